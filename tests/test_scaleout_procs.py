"""Scale-out with real processes on loopback: one ``exo example --role api``
and engines (``--role engine``) on a real redis-server, and the same against
a 3-master Redis Cluster started here. Orders go in over HTTP; engines are
killed (-9), paused past their lease (SIGSTOP/SIGCONT) and stopped (SIGTERM);
Redis itself is restarted on its AOF.

EXO_SCALEOUT_ORDERS sets the orders of the failover run (default 300, 60 BTC
in all whatever their count;
``make test-scaleout-big`` runs 1,000)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer
from tests.scaleout_procs import Deployment

ORDERS = int(os.environ.get("EXO_SCALEOUT_ORDERS", "300"))
FILLED = lambda p: p["ordStatus"] == "FILLED"  # noqa: E731
DONE = lambda p: p["ordStatus"] in ("FILLED", "CANCELED")  # noqa: E731
OWNED = lambda p: p.get("engine") is not None  # noqa: E731
NEVER_FILLS = Decimal("1000000000")
KILL_TOTAL = Decimal("60")  # BTC over all the kill test's orders, whatever ORDERS is


@pytest.fixture(params=["server", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "server":
        return str(request.getfixturevalue("redis_url"))
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return cluster.url


@pytest.fixture
async def deploy(tmp_path: Path) -> AsyncIterator[list[Deployment]]:
    made: list[Deployment] = []
    try:
        yield made
    finally:
        for d in made:
            await d.close()


def _busiest(owners: dict[str, dict[str, object]]) -> tuple[str, str]:
    """Of two engines e1, e2: (the one owning more of the orders, the other)."""
    on_e1 = sum(1 for p in owners.values() if p["engine"] == "e1")
    return ("e1", "e2") if on_e1 * 2 >= len(owners) else ("e2", "e1")


def _report(name: str, **figures: object) -> None:
    """Figures measured by a test, for the log (and benches/report.py via EXO_SCALEOUT_FIGURES)."""
    print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    path = os.environ.get("EXO_SCALEOUT_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


async def test_kill_9_of_an_engine_moves_its_orders_and_every_order_fills_exactly_once(
    url: str, tmp_path: Path, deploy: list[Deployment]
) -> None:
    # A slow replay: ~27 BTC-USD quotes/s, each showing ~0.3 BTC once to all
    # the orders of an engine (its paper venue), so ~3-8 BTC/s per engine.
    # KILL_TOTAL BTC in all (~20 BTC per engine) takes several seconds, so the
    # kill (right after the posts) finds most orders live, and is a small
    # fraction of what the 60 s guard can fill even on the two survivors.
    d = Deployment(url, tmp_path, engines=3, lease=1.5, speed=0.05)
    deploy.append(d)
    await d.ready()
    qty = KILL_TOTAL / ORDERS
    held = await d.post(12, NEVER_FILLS, side="SELL")  # live until canceled, whoever owns them then
    ids = await d.post(ORDERS, qty)
    owners = await d.progress(ids + held)  # a snapshot: some may still be on their way
    victim = "e1"
    on_victim = [i for i in ids + held if owners[i].get("engine") == victim and not DONE(owners[i])]
    assert on_victim, "e1 owns no live order: nothing to fail over"
    killed_at = time.time()
    d.engines[victim].signal(signal.SIGKILL)
    for oid in held:  # cancels written after the kill reach whoever owns the order by then
        r = await d.http.delete(f"/v1/orders/{oid}")
        assert r.status_code == 202, r.text
    final = await d.until(ids + held, DONE, 60, "filled or canceled")
    for oid in ids:
        p = final[oid]
        assert p["ordStatus"] == "FILLED" and Decimal(p["cumQty"]) == qty and Decimal(p["leavesQty"]) == 0, p
        assert p["instructions"] == 1, p  # the NEW, applied once, failover or not
    for oid in held:
        p = final[oid]
        assert p["ordStatus"] == "CANCELED" and p["instructions"] == 2, p  # NEW + CANCEL, once each
    moved = [i for i in on_victim if final[i]["engine"] != victim]
    at_kill = {p["ordStatus"] for i, p in owners.items() if i in on_victim}
    assert moved, f"no order of the killed engine was finished elsewhere ({len(on_victim)} on it, {at_kill})"
    # Orders that never changed hands (a busy machine can make a live engine
    # miss a renewal: its order moves, as it must): the fills their engine
    # printed sum exactly to the quantity.
    printed: dict[str, Decimal] = {}
    for name, proc in d.engines.items():
        if name != victim:
            for oid, s in proc.fills().items():
                printed[oid] = printed.get(oid, Decimal(0)) + s
    stayed = [i for i in ids if owners[i].get("engine") not in (None, victim) and final[i]["epoch"] == 1]
    assert stayed
    for oid in stayed:
        assert printed.get(oid) == qty, (oid, printed.get(oid))
    claims = lost = 0.0
    firsts: list[float] = []
    for name in ("e2", "e3"):
        m = await d.metrics(name)
        claims += m["claims"]
        lost += m["leases_lost"]
        firsts += [t for t in d.engines[name].first_actions(set(on_victim)) if t >= killed_at]
    assert claims >= len(moved)
    assert firsts, "no first action on a claimed order was logged"
    _report(
        "failover_kill9",
        backend="cluster" if url.startswith("redis+cluster") else "server",
        orders=len(ids) + len(held),
        moved=len(moved),
        changed_hands_without_kill=int(lost),
        lease_s=d.lease,
        failover_s=round(min(firsts) - killed_at, 3),
    )


async def test_a_paused_engine_s_late_writes_are_refused_and_the_new_owner_s_state_stands(
    url: str, tmp_path: Path, deploy: list[Deployment]
) -> None:
    # ~54 quotes/s of ~0.3 BTC shown once per engine (~6-16 BTC/s): most of
    # an engine's ~10 orders of 4 BTC (~40 BTC) outlive the moment to the pause,
    # and the new owner (~80 BTC at most, oldest first) gets to every one of
    # them well within the guard. Orders that never fill would not: the size
    # shown goes to one of them, and the others may see none.
    d = Deployment(url, tmp_path, engines=2, lease=1.0, speed=0.1)
    deploy.append(d)
    await d.ready()
    ids = await d.post(20, Decimal("4"))
    owners = await d.until(ids, OWNED, 30, "owned by an engine")
    stale, other = _busiest(owners)
    d.engines[stale].signal(signal.SIGSTOP)
    # Fills go to the oldest orders first: one or two of the paused engine's
    # may have completed before the pause; the ones live then must move.
    at_pause = await d.progress([i for i in ids if owners[i]["engine"] == stale])
    mine = [i for i, p in at_pause.items() if not DONE(p)]
    assert mine, f"{stale} owned no live order at the pause: nothing to take over"
    moved = await d.until(mine, lambda p: p["engine"] == other, 30, "taken over")
    d.engines[stale].signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:
        m = await d.metrics(stale)
        if m["fencing_refusals"] >= 1 and m["owned"] == 0:
            break
        assert time.monotonic() < deadline, f"{stale} after SIGCONT: {m}"
        await asyncio.sleep(0.1)
    # The state in Redis stays the new owner's, and keeps moving there.
    later = await d.until(mine, lambda p: p["engine"] == other and p["fills"] > 0, 30, "progressing")
    for oid in mine:
        assert later[oid]["engine"] == other
        assert later[oid]["fills"] >= moved[oid]["fills"]
        assert later[oid]["instructions"] == 1
    m = await d.metrics(stale)
    _report(
        "fencing",
        refused_writes=int(m["fencing_refusals"]),
        leases_lost=int(m["leases_lost"]),
        orders=len(mine),
    )


async def test_a_graceful_stop_moves_the_orders_without_waiting_for_the_lease(
    url: str, tmp_path: Path, deploy: list[Deployment]
) -> None:
    lease = 60.0  # far longer than the test may take: only a hand-over can move them
    d = Deployment(url, tmp_path, engines=2, lease=lease, speed=5.0)
    deploy.append(d)
    await d.ready()
    ids = await d.post(20, NEVER_FILLS)
    owners = await d.until(ids, OWNED, 30, "owned by an engine")
    stopping, other = _busiest(owners)
    mine = [i for i in ids if owners[i]["engine"] == stopping]
    t0 = time.monotonic()
    assert d.engines[stopping].stop() == 0
    await d.until(mine, lambda p: p["engine"] == other, 30, "handed over")
    elapsed = time.monotonic() - t0
    for oid in ids:
        assert (await d.http.delete(f"/v1/orders/{oid}")).status_code == 202
    final = await d.until(ids, DONE, 30, "canceled")
    assert all(p["instructions"] == 2 and p["ordStatus"] == "CANCELED" for p in final.values())
    _report("graceful_handover", orders=len(mine), seconds=round(elapsed, 3), lease_s=lease)


async def test_redis_restart_mid_run_loses_no_order(
    redis_server: RedisServer, redis_url: str, tmp_path: Path, deploy: list[Deployment]
) -> None:
    # ~108 quotes/s of ~0.3 BTC shown once per engine (~12-32 BTC/s each):
    # 100 orders of 2 BTC (~100 BTC per engine) are still live when Redis
    # stops; the 300 BTC in all fill in well under the guard.
    d = Deployment(redis_url, tmp_path, engines=2, lease=2.0, speed=0.2)
    deploy.append(d)
    await d.ready()
    qty = Decimal("2")
    ids = await d.post(100, qty)
    await d.until(ids, OWNED, 30, "owned by an engine")
    redis_server.stop()  # SIGTERM: Redis writes its AOF
    r = await d.http.post("/v1/orders", json={"side": "BUY", "symbol": "BTC-USD", "orderQty": "1"})
    assert r.status_code == 503 and "not accepted" in r.json()["detail"]
    await asyncio.sleep(0.5)
    redis_server.start()
    ids += await d.post(50, qty)
    final = await d.until(ids, FILLED, 90, "filled")  # under pytest-timeout, so a miss says which
    for oid in ids:
        assert Decimal(final[oid]["cumQty"]) == qty and final[oid]["instructions"] == 1, final[oid]
