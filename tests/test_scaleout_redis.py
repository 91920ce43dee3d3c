"""Scale-out building blocks on a real redis-server: leases (CAS), fencing
epochs, and each Redis Streams pitfall of VENUES.md ("Redis Streams for
scale-out") as a test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

import exo
from exo.scaleout.client import cluster_nodes, connect
from exo.scaleout.lease import Lease, Leases
from exo.scaleout.store import FencedStore
from exo.scaleout.streams import GROUP, autoclaim, ensure_group, read, retire
from exo.store import INSTRUCTION, NEW, Checkpoint, Entry
from tests.helpers import Ledger
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    c = connect(redis_url, socket_timeout=5)
    try:
        yield c
    finally:
        await c.aclose()


# -- leases -----------------------------------------------------------------------


async def test_lease_is_taken_once_and_the_epoch_grows_with_each_acquisition(client: Any) -> None:
    a, b = Leases(client, "a", 10), Leases(client, "b", 10)
    got = (await a.acquire(["o1"]))["o1"]
    assert isinstance(got, Lease) and got.epoch == 1 and got.token == "a/1"
    assert (await b.acquire(["o1"]))["o1"] == "a"  # held: the holder's name, nothing taken
    assert await a.release([got]) == [True]
    again = (await b.acquire(["o1"]))["o1"]
    assert isinstance(again, Lease) and again.epoch == 2


async def test_renew_and_release_are_compare_and_set_on_the_token(client: Any) -> None:
    a, b = Leases(client, "a", 10), Leases(client, "b", 10)
    mine = (await a.acquire(["o1"]))["o1"]
    assert isinstance(mine, Lease)
    forged = Lease("o1", mine.epoch, "b/1")
    assert await b.renew([forged]) == [False]
    assert await b.release([forged]) == [False]
    assert await client.get("exo:{o1}:lease") == b"a/1"  # untouched
    assert await a.renew([mine]) == [True]


async def test_a_lapsed_lease_is_taken_back_only_while_nobody_acquired_it(client: Any) -> None:
    a, b = Leases(client, "a", 0.05), Leases(client, "b", 10)
    mine = await a.acquire(["o1", "o2"])
    l1, l2 = mine["o1"], mine["o2"]
    assert isinstance(l1, Lease) and isinstance(l2, Lease)
    while await client.exists("exo:{o1}:lease", "exo:{o2}:lease"):
        await asyncio.sleep(0.01)
    taken = (await b.acquire(["o2"]))["o2"]
    assert isinstance(taken, Lease) and taken.epoch == 2
    assert await a.renew([l1, l2]) == [True, False]
    assert await client.get("exo:{o2}:lease") == b"b/2"


async def test_a_completed_order_is_never_acquired_again(redis_url: str, client: Any) -> None:
    leases = Leases(client, "a", 10)
    lease = (await leases.acquire(["o1"]))["o1"]
    assert isinstance(lease, Lease)
    store = FencedStore(redis_url)
    await store.open()
    try:
        store.own("o1", lease.epoch)
        await store.append([Entry("o1", 1, NEW, _order("o1"))])
        await store.remove(["o1"])
    finally:
        await store.close()
    assert (await leases.acquire(["o1"]))["o1"] is None


def test_engine_names_and_ttls_are_checked() -> None:
    with pytest.raises(ValueError, match="engine name"):
        Leases(None, "a/b", 1)
    with pytest.raises(ValueError, match="ttl"):
        Leases(None, "a", 0)


def test_cluster_urls_name_their_seed_nodes() -> None:
    assert cluster_nodes("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001") == (
        [("127.0.0.1", 7000), ("127.0.0.1", 7001)],
        None,
        "pw",
    )
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://127.0.0.1:x")
    with pytest.raises(ValueError, match="at least one seed"):
        cluster_nodes("redis+cluster://")


# -- fencing ------------------------------------------------------------------------


def _order(order_id: str) -> exo.Order:
    return exo.Order("BUY", "BTC-USD", order_id=order_id, order_qty=Decimal("2"))


async def test_a_stale_owner_s_writes_are_refused_counted_and_the_order_dropped(
    redis_url: str, client: Any
) -> None:
    old_leases, new_leases = Leases(client, "old", 0.05), Leases(client, "new", 10)
    dropped: list[str] = []
    old, new = FencedStore(redis_url, on_fenced=dropped.append), FencedStore(redis_url)
    await old.open()
    await new.open()
    try:
        first = (await old_leases.acquire(["o1"]))["o1"]
        assert isinstance(first, Lease)
        old.own("o1", first.epoch)
        order = _order("o1")
        assert await old.append([Entry("o1", 1, NEW, order)]) == [True]
        await old.checkpoint([Checkpoint("o1", 1, b"old-1")])
        while await client.exists("exo:{o1}:lease"):  # old is paused past its lease
            await asyncio.sleep(0.01)
        second = (await new_leases.acquire(["o1"]))["o1"]
        assert isinstance(second, Lease) and second.epoch == 2
        new.own("o1", second.epoch)
        (stored,) = await new.load(["o1"])
        assert stored.state == b"old-1"
        await new.checkpoint([Checkpoint("o1", 1, b"new-1")])
        # old wakes up: every write it attempts is refused and changes nothing.
        await old.checkpoint([Checkpoint("o1", 2, b"old-2")])
        assert await old.append([Entry("o1", 2, INSTRUCTION, order.cancel())]) == [False]
        await old.remove(["o1"])
        assert old.refused == 3
        assert dropped == ["o1"]  # told once
        assert await old.live_orders() == []
        (now,) = await new.load(["o1"])
        assert (now.applied, now.state, now.entries) == (1, b"new-1", [])
        assert await new.live_orders() == ["o1"]
        assert new.refused == 0
    finally:
        await old.close()
        await new.close()


async def test_a_late_write_from_an_earlier_ownership_is_refused_without_dropping_the_order_held_now(
    redis_url: str, client: Any
) -> None:
    # Refusals are judged by the order's epoch in Redis, not by the epoch the
    # refused write carried: a progress written late under this engine's
    # earlier epoch is refused (and counted) but the order, held here now
    # under the current epoch, stays; once another engine acquires it, the
    # next refused write drops it here.
    dropped: list[str] = []
    leases = Leases(client, "a", 10)
    store = FencedStore(redis_url, on_fenced=dropped.append)
    await store.open()
    try:
        first = (await leases.acquire(["o1"]))["o1"]
        assert isinstance(first, Lease)
        store.own("o1", first.epoch)
        assert await store.append([Entry("o1", 1, NEW, _order("o1"))]) == [True]
        assert await leases.release([first]) == [True]
        second = (await leases.acquire(["o1"]))["o1"]  # the same engine again, as after a drop
        assert isinstance(second, Lease) and second.epoch == first.epoch + 1
        store.own("o1", second.epoch)
        assert await store.write_progress([("o1", first.epoch, {"late": True}, 1)]) == 0
        assert store.refused == 1 and dropped == [] and store.epochs == {"o1": second.epoch}
        await store.checkpoint([Checkpoint("o1", 1, b"now")])  # under the epoch held now: written
        (stored,) = await store.load(["o1"])
        assert stored.state == b"now" and store.refused == 1
        assert await leases.release([second]) == [True]
        third = (await Leases(client, "b", 10).acquire(["o1"]))["o1"]
        assert isinstance(third, Lease)
        await store.checkpoint([Checkpoint("o1", 1, b"stale")])
        assert store.refused == 2 and dropped == ["o1"] and store.epochs == {}
    finally:
        await store.close()


async def test_a_stale_owner_never_undoes_the_new_owner_s_journal_entries(
    redis_url: str, client: Any
) -> None:
    # The stale owner's write got no reply (Redis paused past its timeout):
    # in doubt, undone once Redis answers. By then another engine owns the
    # order and journaled after it; the undo is fenced by the epoch the entry
    # was sent with, so it deletes nothing of the new owner's (it once sent a
    # plain XDEL 0-<seq>, which hit the new owner's entry of the same seq, or
    # the stale entry the new owner had loaded and applied).
    old_leases, new_leases = Leases(client, "old", 0.05), Leases(client, "new", 10)
    old, new = FencedStore(redis_url, timeout=0.3), FencedStore(redis_url)
    await old.open()
    await new.open()
    try:
        first = (await old_leases.acquire(["o1"]))["o1"]
        assert isinstance(first, Lease)
        old.own("o1", first.epoch)
        order = _order("o1")
        assert await old.append([Entry("o1", 1, NEW, order)]) == [True]
        doubt = Entry("o1", 2, INSTRUCTION, order.cancel())
        await client.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
        try:
            with pytest.raises(exo.StoreUnavailable):
                await old.append([doubt])
        finally:
            await client.execute_command("CLIENT", "UNPAUSE")
        while await client.exists("exo:{o1}:lease"):  # old is paused past its lease
            await asyncio.sleep(0.01)
        second = (await new_leases.acquire(["o1"]))["o1"]
        assert isinstance(second, Lease)
        new.own("o1", second.epoch)
        (stored,) = await new.load(["o1"])
        mine = Entry("o1", stored.last_seq + 1, INSTRUCTION, order.cancel())
        assert await new.append([mine]) == [True]
        (before,) = await new.load(["o1"])
        await old.discard([doubt])  # old is back: it undoes what it had in doubt
        (after,) = await new.load(["o1"])
        assert [e.seq for e in after.entries] == [e.seq for e in before.entries]
        assert mine.seq in [e.seq for e in after.entries]
        assert old.refused == 1 and "o1" not in old.epochs
        assert await new.all_live_orders() == ["o1"]
    finally:
        await old.close()
        await new.close()


async def test_a_new_the_store_refuses_is_not_started_and_leaves_the_order_to_its_owner(
    redis_url: str, client: Any
) -> None:
    # The engine acquired the order, stalled past its lease before the NEW
    # was journaled, and another engine acquired it: the fenced NEW write is
    # refused, and the order must not start here unjournaled. It once did:
    # it filled at the venue while Redis held nothing of it, and the other
    # engine, finding no order behind the index entry, dropped it: lost.
    first = (await Leases(client, "a", 10).acquire(["o1"]))["o1"]
    assert isinstance(first, Lease)
    assert await Leases(client, "a", 10).release([first]) == [True]
    second = (await Leases(client, "b", 10).acquire(["o1"]))["o1"]
    assert isinstance(second, Lease)
    made: list[Any] = []
    errors: list[str] = []
    store = FencedStore(redis_url)

    def factory(order: exo.Order) -> Any:
        made.append(order)
        return Ledger(order)

    async with exo.Engine(
        factory, store=store, on_error=lambda oid, message: errors.append(message)
    ) as engine:
        store.own("o1", first.epoch)
        assert await engine.submit(_order("o1")) is None
        assert made == [] and not engine.is_live("o1")
    assert store.refused == 1 and store.epochs == {}
    assert any("the NEW was not journaled" in m for m in errors), errors
    assert not await client.exists("exo:{o1}:order", "exo:{o1}:journal", "exo:{o1}:done")
    assert await client.get("exo:{o1}:lease") == f"b/{second.epoch}".encode()


async def test_an_intake_message_delivered_twice_is_journaled_once(redis_url: str, client: Any) -> None:
    lease = (await Leases(client, "a", 10).acquire(["o1"]))["o1"]
    assert isinstance(lease, Lease)
    store = FencedStore(redis_url)
    await store.open()
    try:
        store.own("o1", lease.epoch)
        order = _order("o1")
        await store.append([Entry("o1", 1, NEW, order)])
        cancel, again = order.cancel(), order.cancel()
        store.tag(cancel, "exo:intake:{intake.0}@5-0")
        store.tag(again, "exo:intake:{intake.0}@5-0")
        assert await store.append([Entry("o1", 2, INSTRUCTION, cancel)]) == [True]
        assert await store.append([Entry("o1", 3, INSTRUCTION, again)]) == [False]
        assert store.duplicates == 1
        (stored,) = await store.load(["o1"])
        assert [e.seq for e in stored.entries] == [1, 2]
    finally:
        await store.close()


async def test_a_new_already_journaled_is_not_restarted_by_a_second_delivery(
    redis_url: str, client: Any
) -> None:
    lease = (await Leases(client, "a", 10).acquire(["o1"]))["o1"]
    assert isinstance(lease, Lease)
    store = FencedStore(redis_url)
    await store.open()
    try:
        store.own("o1", lease.epoch)
        await store.append([Entry("o1", 1, NEW, _order("o1"))])
        await store.checkpoint([Checkpoint("o1", 1, b"progress")])
        assert await store.append([Entry("o1", 1, NEW, _order("o1"))]) == [False]
        (stored,) = await store.load(["o1"])
        assert stored.state == b"progress"
    finally:
        await store.close()


async def test_one_order_s_journal_entries_land_in_order_on_a_redis_cluster(
    redis_cluster: RedisCluster,
) -> None:
    # A Cluster takes no EVALSHA in a pipeline: the calls go out one by one.
    # Sent concurrently they reached Redis in any order, and an XADD 0-<seq>
    # overtaken by the next one failed ("equal or smaller than the target
    # stream top item"), failing the whole batch of reports with it.
    redis_cluster.flush()
    url = redis_cluster.url
    client = connect(url, socket_timeout=5)
    store = FencedStore(url)
    await store.open()
    try:
        ids = [f"o{i}" for i in range(4)]
        leases = await Leases(client, "a", 10).acquire(ids)
        entries = []
        for oid in ids:
            lease = leases[oid]
            assert isinstance(lease, Lease)
            store.own(oid, lease.epoch)
            entries.append(Entry(oid, 1, NEW, _order(oid)))
        assert await store.append(entries) == [True] * len(ids)
        cancel = _order("o0").cancel()
        batch = [Entry(oid, seq, INSTRUCTION, cancel) for seq in range(2, 102) for oid in ids]
        assert await store.append(batch) == [True] * len(batch)
        for stored in await store.load(ids):
            assert [e.seq for e in stored.entries] == list(range(1, 102))
    finally:
        await store.close()
        await client.aclose()


async def test_an_older_progress_never_lands_over_a_newer_one_nor_over_the_final_one(
    redis_url: str, client: Any
) -> None:
    # The progress writer and the removal of a completed order go out on
    # different connections: an older progress could reach Redis last and
    # stay (a FILLED order shown NEW for good). Each carries a version.
    lease = (await Leases(client, "a", 10).acquire(["o1"]))["o1"]
    assert isinstance(lease, Lease)
    store = FencedStore(redis_url)
    await store.open()
    try:
        store.own("o1", lease.epoch)
        await store.append([Entry("o1", 1, NEW, _order("o1"))])
        assert await store.write_progress([("o1", lease.epoch, {"ordStatus": "PARTIALLY_FILLED"}, 2)]) == 0
        assert await store.write_progress([("o1", lease.epoch, {"ordStatus": "NEW"}, 1)]) == 1
        assert json.loads(await client.get("exo:{o1}:progress")) == {"ordStatus": "PARTIALLY_FILLED"}
        store.final_progress = lambda oid: ({"ordStatus": "FILLED"}, 4)
        await store.remove(["o1"])
        # Late, after the removal: the older one changes nothing, a newer one lands.
        assert await store.write_progress([("o1", lease.epoch, {"ordStatus": "PARTIALLY_FILLED"}, 3)]) == 1
        assert json.loads(await client.get("exo:{o1}:progress")) == {"ordStatus": "FILLED"}
        assert await store.write_progress([("o1", lease.epoch, {"ordStatus": "FILLED", "n": 2}, 5)]) == 0
        assert json.loads(await client.get("exo:{o1}:progress")) == {"ordStatus": "FILLED", "n": 2}
        assert 0 < await client.pttl("exo:{o1}:pver") <= store.keep * 1000  # expires with the order
        # Another engine's epoch starts its own versions.
        await client.set("exo:{o1}:epoch", lease.epoch + 1)
        assert await store.write_progress([("o1", lease.epoch + 1, {"ordStatus": "X"}, 1)]) == 0
    finally:
        await store.close()


async def test_a_cluster_master_that_lost_its_scripts_gets_them_again_within_the_batch(
    redis_cluster: RedisCluster,
) -> None:
    # Each master has its own script cache (a restart, a new master): the
    # calls that met NOSCRIPT go again after SCRIPT LOAD, the others stand.
    redis_cluster.flush()
    client = connect(redis_cluster.url, socket_timeout=5)
    try:
        leases = Leases(client, "a", 10)
        ids = [f"o{i}" for i in range(30)]  # over all three masters
        got = await leases.acquire(ids[:15])
        for port in (n.port for n in redis_cluster.nodes):
            async with Redis(host="127.0.0.1", port=port) as node:
                await node.script_flush()
        got.update(await leases.acquire(ids[15:]))
        assert all(isinstance(g, Lease) and g.epoch == 1 for g in got.values())
        assert await leases.renew([g for g in got.values() if isinstance(g, Lease)]) == [True] * 30
    finally:
        await client.aclose()


# -- Redis Streams pitfalls -----------------------------------------------------------


async def _fill(client: Any, stream: str, n: int) -> list[str]:
    await ensure_group(client, stream)
    ids = []
    for i in range(n):
        ids.append((await client.xadd(stream, {"k": "i", "o": f"o{i}", "v": b""})).decode())
    return ids


async def test_pending_entries_are_read_first_after_a_restart(client: Any) -> None:
    ids = await _fill(client, "s", 5)
    first = read(client, "s", "c1", block_ms=10, count=3)
    batch = await first.__anext__()
    assert [m.id for m in batch] == ids[:3]  # read, never ACKed: the consumer "dies"
    await first.aclose()
    again = read(client, "s", "c1", block_ms=10, count=10)
    assert [m.id for m in await again.__anext__()] == ids[:3]  # its own pending first (ID 0)
    assert [m.id for m in await again.__anext__()] == ids[3:]  # then new ones (>)
    await client.xack("s", GROUP, *ids)
    assert await again.__anext__() == []  # blocked, nothing came
    await again.aclose()


async def test_xautoclaim_iterates_its_cursor_to_the_end_and_reports_deleted_ids(client: Any) -> None:
    ids = await _fill(client, "s", 50)
    await client.xreadgroup(GROUP, "dead", {"s": ">"}, count=100)
    deleted = ids[10:15]
    await client.xdel("s", *deleted)
    # count=7: one XAUTOCLAIM call cannot take all; the cursor must be followed to 0-0.
    claimed, gone = await autoclaim(client, "s", "alive", 0, count=7)
    assert [m.id for m in claimed] == [i for i in ids if i not in deleted]
    assert sorted(gone) == sorted(deleted)
    pending = await client.xpending("s", GROUP)
    assert pending["pending"] == 45
    assert {c["name"]: c["pending"] for c in pending["consumers"]} == {b"alive": 45}


async def test_xautoclaim_respects_min_idle_so_a_live_consumer_keeps_fresh_work(client: Any) -> None:
    await _fill(client, "s", 3)
    await client.xreadgroup(GROUP, "busy", {"s": ">"}, count=10)
    claimed, _ = await autoclaim(client, "s", "other", 60_000)
    assert claimed == []


async def test_delconsumer_alone_drops_pending_entries_so_retire_claims_them_first(client: Any) -> None:
    ids = await _fill(client, "s", 6)
    await client.xreadgroup(GROUP, "gone1", {"s": ">"}, count=3)
    await client.xreadgroup(GROUP, "gone2", {"s": ">"}, count=3)
    # The pitfall: DELCONSUMER silently forgets what it had pending.
    await client.xgroup_delconsumer("s", GROUP, "gone1")
    assert (await client.xpending("s", GROUP))["pending"] == 3
    # retire(): claimed first, then deleted.
    claimed = await retire(client, "s", "gone2", "heir")
    assert [m.id for m in claimed] == ids[3:]
    info = {c["name"]: c["pending"] for c in await client.xinfo_consumers("s", GROUP)}
    assert info == {b"heir": 3}


async def test_a_blocking_read_needs_a_connection_whose_timeout_exceeds_the_block(redis_url: str) -> None:
    shared = Redis.from_url(redis_url, socket_timeout=0.2)
    own = connect(redis_url, socket_timeout=0.6 + 5)
    try:
        await ensure_group(own, "s")
        with pytest.raises(RedisTimeoutError):  # the pitfall, as redis-py shows it
            await shared.xreadgroup(GROUP, "c", {"s": ">"}, block=600)
        batches = read(own, "s", "c", block_ms=600)
        assert await batches.__anext__() == []  # blocked the full time, then an empty batch
        await batches.aclose()
    finally:
        await shared.aclose()
        await own.aclose()


async def test_a_lease_renewal_right_after_a_redis_restart_succeeds_on_stale_pooled_connections(
    redis_server: RedisServer, redis_url: str, client: Any
) -> None:
    # The engine's own client (``connect``): several pooled connections, all
    # open when Redis restarts (AOF on: the lease is still there after).
    leases = Leases(client, "a", 30)
    mine = (await leases.acquire(["o1"]))["o1"]
    assert isinstance(mine, Lease)
    await asyncio.gather(*(client.time() for _ in range(8)))
    pooled = len(client.connection_pool._available_connections)
    assert pooled >= 2
    await asyncio.to_thread(redis_server.stop)
    await asyncio.to_thread(redis_server.start)
    # Each renewal takes a pooled connection Redis closed: sent again on a new one.
    for _ in range(pooled):
        assert await leases.renew([mine]) == [True]
    assert await client.get("exo:{o1}:lease") == b"a/1"


async def test_a_journal_write_sent_twice_is_written_once_and_answered_as_written(
    redis_url: str, client: Any
) -> None:
    # redis-py sends a command again when its connection dropped, even if the
    # first copy ran: the append script answers "written" again, not
    # "duplicate" (which would keep the entry from the delegate).
    store = FencedStore(redis_url)
    await store.open()
    try:
        leases = Leases(client, "a", 30)
        lease = (await leases.acquire(["o1"]))["o1"]
        assert isinstance(lease, Lease)
        store.own("o1", lease.epoch)
        order = _order("o1")
        assert await store.append([Entry("o1", 1, NEW, order)]) == [True]
        cancel = order.cancel()
        for _ in range(2):
            store.tag(cancel, "exo:intake:{intake.0}@5-0")
            assert await store.append([Entry("o1", 2, INSTRUCTION, cancel)]) == [True]
        assert store.duplicates == 0
        assert [fields[b"k"] for _, fields in await client.xrange("exo:{o1}:journal")] == [b"n", b"i"]
        # A second delivery of the same intake message (a new seq) is still a duplicate.
        store.tag(cancel, "exo:intake:{intake.0}@5-0")
        assert await store.append([Entry("o1", 3, INSTRUCTION, cancel)]) == [False]
        assert store.duplicates == 1
    finally:
        await store.close()
