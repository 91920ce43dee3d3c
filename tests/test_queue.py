"""ConflatingQueue: keyed, conflating, O(1), level-triggered, thread-safe."""

from __future__ import annotations

import asyncio
import threading

import pytest

from exo import ConflatingQueue


def test_new_keys_append_and_pop_returns_oldest_first() -> None:
    q = ConflatingQueue()
    for k, v in [("a", 1), ("b", 2), ("c", 3)]:
        q.push(k, v)
    assert len(q) == 3 and q.len() == 3
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == [("a", 1), ("b", 2), ("c", 3), None]


def test_pushing_a_queued_key_replaces_it_in_place() -> None:
    q = ConflatingQueue()
    q.push("a", 1)
    q.push("b", 2)
    q.push("a", 10)
    assert len(q) == 2
    assert q.pop() == ("a", 10)
    assert q.pop() == ("b", 2)


def test_merge_function_gets_existing_then_new() -> None:
    q = ConflatingQueue(merge=lambda old, new: old + new)
    q.push("a", [1])
    q.push("b", [2])
    q.push("a", [3])
    q.push("a", [4])
    assert q.pop() == ("a", [1, 3, 4])
    assert q.pop() == ("b", [2])


def test_popped_key_is_forgotten_and_requeues_at_tail() -> None:
    q = ConflatingQueue()
    q.push("a", 1)
    q.push("b", 2)
    assert q.pop() == ("a", 1)
    q.push("a", 3)
    assert [q.pop(), q.pop()] == [("b", 2), ("a", 3)]


def test_keys_may_be_str_int_bytes_and_tuples() -> None:
    q = ConflatingQueue()
    q.push(("BTC-USD", 1), "x")
    q.push(("BTC-USD", 1), "y")
    q.push(2**70, "big")
    q.push(b"raw", "bytes")
    q.push(7, "int")
    assert q.pop() == (("BTC-USD", 1), "y")
    assert q.pop() == (2**70, "big")
    with pytest.raises(TypeError, match="expected str, int, bytes or a tuple"):
        q.push(1.5, "float key")


def test_a_raising_merge_loses_nothing() -> None:
    def merge(old: int, new: int) -> int:
        raise RuntimeError("no")

    q = ConflatingQueue(merge=merge)
    q.push("a", 1)
    with pytest.raises(RuntimeError):
        q.push("a", 2)
    assert q.pop() == ("a", 1)


def test_many_threads_pushing_with_merge_lose_nothing() -> None:
    q = ConflatingQueue(merge=lambda a, b: a + b)
    n_threads, per = 4, 5000

    def pusher(t: int) -> None:
        for i in range(per):
            q.push((t * 7 + i) % 16, 1)

    threads = [threading.Thread(target=pusher, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    total = 0
    while any(t.is_alive() for t in threads):
        item = q.pop()
        if item is not None:
            total += item[1]
    for t in threads:
        t.join()
    while (item := q.pop()) is not None:
        total += item[1]
    assert total == n_threads * per


async def test_get_waits_for_a_push_from_another_thread() -> None:
    q = ConflatingQueue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    threading.Thread(target=q.push, args=("k", "v")).start()
    assert await asyncio.wait_for(getter, 5) == ("k", "v")


async def test_wakeup_is_a_level_many_pushes_one_get_each() -> None:
    q = ConflatingQueue()
    for i in range(100):
        q.push(i % 3, i)
    got = [await q.get() for _ in range(3)]
    assert got == [(0, 99), (1, 97), (2, 98)]
    assert q.pop() is None
