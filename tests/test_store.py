"""Stores: every stored item round-trips (order, journal entries, checkpoint
and state, index), in MemoryStore and in a real Redis; Redis URLs and keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

import exo
from exo.store import INSTRUCTION, NEW, REPORT, Checkpoint, Entry
from tests.redis_server import RedisServer, free_port


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[exo.Store]:
    s: exo.Store
    if request.param == "memory":
        s = exo.MemoryStore()
    else:
        s = exo.RedisStore(request.getfixturevalue("redis_url"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _order(order_id: str = "o1") -> exo.Order:
    return exo.Order("BUY", "BTC-USD", order_id=order_id, order_qty=Decimal("2"), limit="101.5")


def _journal(order_id: str = "o1") -> list[Entry]:
    order = _order(order_id)
    return [
        Entry(order_id, 1, NEW, order),
        Entry(order_id, 2, INSTRUCTION, order.replace(limit="102")),
        Entry(order_id, 3, REPORT, exo.Report(order_id, "PARTIALLY_FILLED", "0.5", "101", exec_id="e1")),
        Entry(order_id, 4, INSTRUCTION, order.cancel()),
    ]


async def test_order_and_journal_round_trip_in_arrival_order(store: exo.Store) -> None:
    entries = _journal()
    assert await store.append(entries) == [True] * 4
    assert await store.live_orders() == ["o1"]
    (got,) = await store.load(["o1"])
    assert got.order == entries[0].item and got.order.limit == "101.5"
    assert (got.applied, got.state, got.last_seq) == (0, None, 4)
    kinds = [(e.seq, e.kind) for e in got.entries]
    assert kinds == [(1, NEW), (2, INSTRUCTION), (3, REPORT), (4, INSTRUCTION)]
    assert [e.item for e in got.entries] == [e.item for e in entries]
    assert got.entries[2].item.exec_id == "e1" and got.entries[1].item.limit == "102"


async def test_checkpoint_keeps_state_and_drops_applied_entries(store: exo.Store) -> None:
    await store.append(_journal())
    state = store.codec.dumps({"filled": "0.5"})
    await store.checkpoint([Checkpoint("o1", 3, state)])
    (got,) = await store.load(["o1"])
    assert got.applied == 3 and store.codec.loads(got.state) == {"filled": "0.5"}
    assert [e.seq for e in got.entries] == [4]
    assert got.last_seq == 4
    # A checkpoint without state keeps the applied seq only.
    await store.checkpoint([Checkpoint("o1", 4, None)])
    (got,) = await store.load(["o1"])
    assert got.applied == 4 and got.entries == []


async def test_removed_order_leaves_the_index_and_refuses_entries(store: exo.Store) -> None:
    await store.append(_journal("o1") + _journal("o2"))
    await store.remove(["o1"])
    assert await store.live_orders() == ["o2"]
    assert await store.load(["o1"]) == []
    late = Entry("o1", 5, REPORT, exo.Report("o1", "FILLED"))
    still_live = Entry("o2", 5, REPORT, exo.Report("o2", "FILLED"))
    assert await store.append([late, still_live]) == [False, True]


async def test_discard_undoes_unconfirmed_entries_and_new_orders(store: exo.Store) -> None:
    entries = [*_journal("o1"), Entry("o2", 1, NEW, _order("o2"))]
    await store.append(entries)
    await store.discard([entries[3], entries[4]])
    assert await store.live_orders() == ["o1"]
    (got,) = await store.load(["o1"])
    assert [e.seq for e in got.entries] == [1, 2, 3]


async def test_new_for_a_reused_order_id_starts_afresh(store: exo.Store) -> None:
    await store.append(_journal("o1"))
    await store.checkpoint([Checkpoint("o1", 2, b"old")])
    await store.append([Entry("o1", 1, NEW, _order("o1"))])
    (got,) = await store.load(["o1"])
    assert (got.applied, got.state, [e.seq for e in got.entries]) == (0, None, [1])


async def test_redis_keys_of_an_order_share_its_hash_tag(redis_url: str) -> None:
    store = exo.RedisStore(redis_url, prefix="t")
    await store.open()
    try:
        await store.append(_journal("o1"))
        await store.checkpoint([Checkpoint("o1", 2, b"s")])
    finally:
        await store.close()
    with redis.Redis.from_url(redis_url) as r:
        keys = sorted(k.decode() for k in r.keys("*"))
        assert keys == ["t:live", "t:{o1}:checkpoint", "t:{o1}:journal", "t:{o1}:order"]
        assert r.type("t:{o1}:journal") == b"stream"
        assert [i for i, _ in r.xrange("t:{o1}:journal")] == [b"0-3", b"0-4"]


async def test_redis_store_loads_its_scripts_again_when_the_server_lost_them(redis_url: str) -> None:
    store = exo.RedisStore(redis_url)
    await store.open()
    try:
        await store.append([Entry("o1", 1, NEW, _order("o1"))])
        with redis.Redis.from_url(redis_url) as r:
            r.script_flush()
        # A batch where the NEW's script fails: the NEW and the entries of its
        # order after it are written again; o1's report was written at once.
        written = await store.append(
            [
                Entry("o2", 1, NEW, _order("o2")),
                Entry("o1", 2, REPORT, exo.Report("o1", "NEW")),
                Entry("o2", 2, INSTRUCTION, _order("o2").cancel()),
            ]
        )
        assert written == [True, True, True]
        for order_id, kinds in (("o1", [NEW, REPORT]), ("o2", [NEW, INSTRUCTION])):
            (got,) = await store.load([order_id])
            assert [e.kind for e in got.entries] == kinds
        with redis.Redis.from_url(redis_url) as r:
            r.script_flush()
        await store.checkpoint([Checkpoint("o1", 2, b"s")])
        with redis.Redis.from_url(redis_url) as r:
            r.script_flush()
        (got,) = await store.load(["o1"])
        assert (got.applied, got.state, got.entries) == (2, b"s", [])
    finally:
        await store.close()


async def test_redis_retention_expires_a_completed_orders_keys(redis_url: str) -> None:
    store = exo.RedisStore(redis_url, retention=60)
    await store.open()
    try:
        await store.append(_journal("o1"))
        await store.checkpoint([Checkpoint("o1", 1)])
        await store.remove(["o1"])
        assert await store.live_orders() == []
    finally:
        await store.close()
    with redis.Redis.from_url(redis_url) as r:
        for key in store.keys("o1"):
            assert 0 < r.pttl(key) <= 60_000


async def test_redis_unreachable_at_start_says_where_and_what_was_expected() -> None:
    url = f"redis://:sekrit@127.0.0.1:{free_port()}/0"
    engine = exo.Engine(lambda o: None, store=exo.RedisStore(url, timeout=1))
    with pytest.raises(exo.StoreUnavailable, match=r"cannot reach Redis at redis://:\*\*\*@127.0.0.1") as e:
        await engine.start()
    assert "sekrit" not in str(e.value)
    assert not engine.running


async def test_password_protected_redis_needs_the_password_in_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret")
    server.start()
    try:
        good = exo.RedisStore(server.url)
        await good.open()
        await good.append(_journal())
        assert await good.live_orders() == ["o1"]
        await good.close()
        wrong = exo.RedisStore(server.url.replace("s3cret", "nope"))
        with pytest.raises(exo.StoreUnavailable, match="refused the credentials"):
            await wrong.open()
        missing = exo.RedisStore(f"redis://127.0.0.1:{server.port}/0")
        with pytest.raises(exo.StoreUnavailable):
            await missing.open()
    finally:
        server.stop()


def test_redis_url_forms_tls_user_password_and_db() -> None:
    tls = exo.RedisStore("rediss://trader:p%40ss@cache.example:6380/3").connection_options()
    assert tls["tls"] is True
    assert (tls["host"], tls["port"], tls["db"]) == ("cache.example", 6380, 3)
    assert (tls["username"], tls["password"]) == ("trader", "p@ss")
    plain = exo.RedisStore("redis://:pw@localhost/2").connection_options()
    assert (plain["tls"], plain["password"], plain["db"]) == (False, "pw", 2)
    assert "pw" not in repr(exo.RedisStore("redis://:pw@localhost/2"))
    unix = exo.RedisStore("unix:///run/redis.sock").connection_options()
    assert unix["path"] == "/run/redis.sock"


def test_redis_store_refuses_a_url_that_is_not_redis() -> None:
    with pytest.raises(ValueError, match=r"redis://.*rediss://.*got 'http://x'"):
        exo.RedisStore("http://x")
    with pytest.raises(ValueError, match="retention"):
        exo.RedisStore("redis://x", retention=0)
