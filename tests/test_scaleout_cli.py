"""Roles on the command line: bad input is a clear error and starts nothing."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import exo
from exo.scaleout import EngineNode, Intake
from exo.scaleout.client import connect
from exo.scaleout.streams import GROUP, consumers, ensure_group, intake_stream, partition_of
from tests.redis_server import free_port
from tests.scaleout_procs import Proc, healthy


def _exo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exo", "example", *args], capture_output=True, text=True, timeout=60
    )


def test_a_role_without_redis_is_refused_with_the_reason() -> None:
    done = _exo("--role", "engine", "--http", "127.0.0.1:0")
    assert done.returncode == 2
    assert "--role engine needs --redis URL" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "worker"], "invalid choice: 'worker'"),
        (["--partitions", "0"], "expected a whole number from 1 to 1024, got '0'"),
        (["--lease", "-1"], "expected a positive number of seconds, got '-1'"),
    ],
)
def test_bad_role_flags_are_refused_by_name(args: list[str], message: str) -> None:
    done = _exo(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_engine_names_and_partitions_are_checked() -> None:
    with pytest.raises(ValueError, match="engine name"):
        EngineNode("redis://127.0.0.1:1/0", "a/b", lambda order: None)
    with pytest.raises(ValueError, match="partitions"):
        EngineNode("redis://127.0.0.1:1/0", "a", lambda order: None, partitions=0)
    with pytest.raises(ValueError, match="partitions"):
        Intake("redis://127.0.0.1:1/0", partitions=0)


async def test_the_intake_refuses_what_is_not_an_instruction(redis_url: str) -> None:
    async with Intake(redis_url) as intake:
        with pytest.raises(TypeError, match=r"expected an exo\.Order"):
            await intake.submit("NEW BTC-USD")
        with pytest.raises(ValueError, match="a report needs the order_id"):
            await intake.report(object())
        assert await intake.progress("nope") is None


async def test_the_intake_says_when_redis_is_unreachable() -> None:
    from tests.redis_server import free_port

    with pytest.raises(exo.StoreUnavailable, match="cannot reach Redis for the intake"):
        await Intake(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5).open()


async def test_the_api_role_serves_offline_docs_that_document_the_new_order_body(
    redis_url: str, tmp_path: Path
) -> None:
    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    try:
        await healthy([api])
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as client:
            root = await client.get("/")
            docs = await client.get("/docs")
            schema = (await client.get("/openapi.json")).json()
    finally:
        assert api.stop() == 0
    assert root.status_code == 307 and root.headers["location"] == "/docs"
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "cdn.jsdelivr.net" not in docs.text  # served by the example itself
    body = schema["paths"]["/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"side", "symbol", "orderQty"}
    assert "price" in body["properties"]
    assert b"API docs http://127.0.0.1:" in api.log() and b"try: curl -X POST" in api.log()


async def test_the_api_role_says_why_it_lists_no_orders_and_bounds_echoed_ids(
    redis_url: str, tmp_path: Path
) -> None:
    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    long_id = "x" * 300
    try:
        await healthy([api])
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as client:
            listing = await client.get("/v1/orders")
            unknown = await client.get(f"/v1/orders/{long_id}")
            cancel = await client.delete(f"/v1/orders/{long_id}")
    finally:
        assert api.stop() == 0
    assert listing.status_code == 501
    assert "GET /v1/orders/{id} answers for any order" in listing.json()["detail"]
    for answer in (unknown, cancel):
        assert answer.status_code == 404
        # JSON-escaped and cut at 40 characters, as in the single process
        assert answer.json()["detail"] == f'no order "{"x" * 39}... (302 chars)'


async def test_an_engine_logs_a_summary_line_per_live_order(redis_url: str, tmp_path: Path) -> None:
    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    engine = Proc("engine", "e1", ["--redis", redis_url, "--name", "e1", "--summary", "0.2"], tmp_path)
    try:
        await healthy([api, engine])
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as client:
            # A BUY far below the market rests: the order stays live.
            body = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "1", "price": "100"}
            posted = await client.post("/v1/orders", json=body)
        assert posted.status_code == 202, posted.text
        line = f"{posted.json()['orderID']} BUY 1 BTC-USD: ".encode()
        deadline = time.monotonic() + 30.0
        while line not in engine.log():
            assert engine.alive(), engine.log()[-3000:]
            assert time.monotonic() < deadline, f"no summary line in {engine.log()[-3000:]!r}"
            await asyncio.sleep(0.05)
        summary = engine.log().split(line, 1)[1].split(b"\n", 1)[0]
        assert b"quotes merged, staleness" in summary and b"filled 0 of 1 (NEW)" in summary
    finally:
        assert engine.stop() == 0
        assert api.stop() == 0


async def test_the_api_role_metrics_parse_as_prometheus_counters(redis_url: str, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    try:
        await healthy([api])
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as client:
            body = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "1", "price": "100"}
            assert (await client.post("/v1/orders", json=body)).status_code == 202
            text = (await client.get("/metrics")).text
    finally:
        assert api.stop() == 0
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # one family per counter, typed, with its sample in it (no untyped strays)
    assert sorted(families) == ["exo_api_accepted", "exo_api_cancels", "exo_api_unavailable"]
    accepted = families["exo_api_accepted"]
    assert accepted.type == "counter" and accepted.documentation
    assert [(s.name, s.value) for s in accepted.samples] == [("exo_api_accepted_total", 1.0)]


async def test_a_process_with_other_partitions_than_the_deployment_is_refused(redis_url: str) -> None:
    # Before, an api with --partitions 8 beside engines with 4 answered 202 and
    # left about half its orders PENDING_NEW for ever, in streams no engine reads.
    async with Intake(redis_url, partitions=4):
        pass
    with pytest.raises(
        ValueError, match=r"deployment of 4 intake partition\(s\) \(exo:partitions\), this process has 8"
    ):
        await Intake(redis_url, partitions=8).open()
    node = EngineNode(redis_url, "e1", lambda order: None, partitions=2)
    try:
        with pytest.raises(ValueError, match="give every api and engine the same --partitions"):
            await node.start()
    finally:
        await node.stop()
    async with Intake(redis_url, partitions=4):  # the agreed count still opens
        pass
    done = _exo("--role", "api", "--redis", redis_url, "--partitions", "8", "--http", "127.0.0.1:0")
    assert done.returncode == 1
    assert "this process has 8: give every api and engine the same --partitions" in done.stderr


async def test_the_api_role_says_when_no_engine_runs(redis_url: str, tmp_path: Path) -> None:
    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    engine: Proc | None = None
    try:
        await healthy([api])
        assert b"no engine is running on this Redis yet" in api.log()
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as client:

            async def engines() -> list[str]:
                answer = await client.get("/healthz")
                assert answer.status_code == 200
                return list(answer.json()["engines"])

            assert await engines() == []
            engine = Proc("engine", "e1", ["--redis", redis_url, "--name", "e1"], tmp_path)
            await healthy([engine])  # its heartbeat is written before it serves /healthz
            assert await engines() == ["e1"]
            assert engine.stop() == 0  # graceful: it says it is gone
            assert await engines() == []
    finally:
        if engine is not None:
            engine.stop()
        assert api.stop() == 0


async def test_an_engine_restarted_with_the_default_name_reads_the_entries_it_had_pending(
    redis_url: str, tmp_path: Path
) -> None:
    # An engine without --name is "<host>-<port of --http>": the same after a
    # restart. Its first run read a NEW and died (kill -9) before journaling
    # it: the entry is pending for that consumer. Restarted on the same
    # --http, it reads its own pending entries first and works the order at
    # once; named after its pid, it was another consumer, and the entry
    # waited for a take-over (two leases idle: two minutes here).
    port = free_port()
    name = f"{socket.gethostname()}-{port}"
    api = Proc("api", "api", ["--redis", redis_url], tmp_path)
    engine: Proc | None = None
    client = connect(redis_url, socket_timeout=5)
    try:
        await healthy([api])
        async with httpx.AsyncClient(base_url=api.url, timeout=5.0) as http:
            body = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "1", "price": "100"}  # rests
            posted = await http.post("/v1/orders", json=body)
            assert posted.status_code == 202, posted.text
            oid = posted.json()["orderID"]
            stream = intake_stream("exo", partition_of(oid, 4))
            await ensure_group(client, stream)
            read = await client.xreadgroup(GROUP, name, {stream: ">"}, count=10)  # the first run
            assert [f[b"o"].decode() for _, f in read[0][1]] == [oid]
            engine = Proc("engine", "restarted", ["--redis", redis_url, "--lease", "60"], tmp_path, port=port)
            await healthy([engine])
            deadline = time.monotonic() + 30.0
            while (got := (await http.get(f"/v1/orders/{oid}")).json()).get("engine") != name:
                assert engine.alive(), engine.log()[-3000:]
                assert time.monotonic() < deadline, f"not taken by {name}: {got}, {engine.log()[-3000:]!r}"
                await asyncio.sleep(0.05)
        assert f"engine {name}: reading 4 intake partition(s)".encode() in engine.log()
        found = await consumers(client, stream)
        assert list(found) == [name] and found[name][0] == 0  # one consumer, nothing left pending
    finally:
        await client.aclose()
        if engine is not None:
            assert engine.stop() == 0
        assert api.stop() == 0
