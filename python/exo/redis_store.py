"""RedisStore: the engine's journal and checkpoints in Redis.

Key layout (``prefix`` defaults to ``exo``; ``{<order_id>}`` is a hash tag, so
all of one order's keys share a Cluster slot and are updated atomically):

    exo:live                        SET     order_ids of live orders (the index)
    exo:{<order_id>}:order          STRING  the NEW as submitted (codec)
    exo:{<order_id>}:journal        STREAM  entry ID 0-<seq>; k = n|i|r, v = the item (codec)
    exo:{<order_id>}:checkpoint     HASH    applied = last applied seq, state = the delegate's state() (codec)

One stream per order holds the NEW marker, instructions and reports in arrival
order, so replay keeps exactly the order in which they arrived; the engine
numbers them itself (seq), so a write whose reply was lost can be found and
undone. A checkpoint and the trim of the entries it covers are one Lua call.
The Lua scripts are registered with redis-py's ``register_script`` and loaded
once when the store opens; calls send EVALSHA (the script's SHA1 digest, not
its text). A server that lost its script cache (restarted, SCRIPT FLUSH)
answers NOSCRIPT: the store loads the scripts again and re-sends what failed,
so nothing special is needed. (redis-py's own fallback inside a pipeline
costs a SCRIPT EXISTS round trip per pipeline, ~80 us on loopback per
journal write; this one costs nothing until a NOSCRIPT.)

Uses the ``redis`` package's asyncio client (install ``hiredis`` to parse faster).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from exo.store import (
    NEW,
    Checkpoint,
    Codec,
    Entry,
    Store,
    StoredOrder,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline
    from redis.commands.core import AsyncScript

__all__ = ["RedisStore"]

log = logging.getLogger("exo.store")

_SCHEMES = ("redis", "rediss", "unix", "redis+cluster")

# KEYS: order, journal, checkpoint. ARGV: the encoded NEW, its seq.
# A NEW (re)starts the order: whatever a finished order of that id left goes.
_NEW = """
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], ARGV[1])
return redis.call('XADD', KEYS[2], '0-' .. ARGV[2], 'k', 'n')
"""

# KEYS: checkpoint, journal, order. ARGV: applied seq, '1' when a state follows, state.
# The checkpoint and the trim of the entries it covers, atomically.
_CHECKPOINT = """
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'applied', ARGV[1], 'state', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'applied', ARGV[1])
end
redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (tonumber(ARGV[1]) + 1))
return 1
"""

# KEYS: order, journal, checkpoint. One order for recovery, in one flat reply:
# {order, applied, state, has_state, last_generated_id, id, kind, value, id, kind, value ...}
# with the entries after the checkpoint only. nil when the order is gone.
_LOAD = """
local order = redis.call('GET', KEYS[1])
if not order then return false end
local ck = redis.call('HMGET', KEYS[3], 'applied', 'state')
local applied = tonumber(ck[1]) or 0
local out = {order, applied, ck[2] or '', ck[2] and 1 or 0, '0-0'}
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then out[5] = info[i + 1] end
  end
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], '(0-' .. applied, '+')) do
    local k, v = '', ''
    for i = 1, #e[2], 2 do
      if e[2][i] == 'k' then k = e[2][i + 1] elseif e[2][i] == 'v' then v = e[2][i + 1] end
    end
    out[#out + 1] = e[1]
    out[#out + 1] = k
    out[#out + 1] = v
  end
end
return out
"""

_SCRIPTS = {"new": _NEW, "checkpoint": _CHECKPOINT, "load": _LOAD}

_CHUNK = 500
"""Orders per pipeline when loading."""


def _redacted(url: str) -> str:
    """The URL with its password replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _is_noscript(reply: Any) -> bool:
    """True for the error a server without the script answers EVALSHA with."""
    from redis.exceptions import NoScriptError

    return isinstance(reply, NoScriptError)


def _seq(stream_id: bytes | str) -> int:
    raw = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return int(raw.split("-", 1)[1])


class RedisStore(Store):
    """Journal and checkpoints in Redis.

    ``url``: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...``
    for TLS (``?ssl_cert_reqs=none`` and the other redis-py URL options work),
    ``unix:///path/to/socket``, or ``redis+cluster://host:port[,host:port...]``
    for a Redis Cluster given by seed nodes (every command touches one slot:
    each order's keys share its hash tag, the index is one key). ``retention``: seconds a completed order's
    keys are kept (expired) before Redis drops them; None deletes them at once.
    ``prefix`` starts every key. ``timeout``: seconds a connect or a command
    may take before the store counts as unreachable.
    """

    durable = True

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "exo",
        retention: float | None = None,
        timeout: float = 5.0,
        codec: Codec | None = None,
    ) -> None:
        super().__init__(codec)
        if not isinstance(url, str) or urlsplit(url).scheme not in _SCHEMES:
            raise ValueError(
                f"RedisStore url must be redis://[[user]:password@]host[:port][/db], rediss://... (TLS), "
                f"unix:///path or redis+cluster://host:port[,host:port...] (Redis Cluster seeds), got {url!r}"
            )
        if retention is not None and not retention > 0:
            raise ValueError(f"retention must be a positive number of seconds or None, got {retention!r}")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be a non-empty string without braces, got {prefix!r}")
        self.url = url
        self.prefix = prefix
        self.retention = retention
        self.timeout = timeout
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    def __repr__(self) -> str:
        return f"RedisStore({_redacted(self.url)!r}, prefix={self.prefix!r})"

    # -- keys -------------------------------------------------------------------

    @property
    def index_key(self) -> str:
        """The SET of live order_ids."""
        return f"{self.prefix}:live"

    def keys(self, order_id: str) -> tuple[str, str, str]:
        """(order, journal, checkpoint) keys of one order, sharing its hash tag."""
        tag = f"{self.prefix}:{{{order_id}}}"
        return f"{tag}:order", f"{tag}:journal", f"{tag}:checkpoint"

    def connection_options(self) -> dict[str, Any]:
        """What the URL says, as redis-py parses it: host, port, db, username,
        password, ``tls`` (True for rediss://). For checking a URL without a server."""
        from redis.asyncio.connection import SSLConnection, parse_url

        options: dict[str, Any] = dict(parse_url(self.url))
        options["tls"] = options.pop("connection_class", None) is SSLConnection
        return options

    # -- life cycle -------------------------------------------------------------

    async def open(self) -> None:
        from redis.exceptions import AuthenticationError, RedisError, ResponseError

        from exo.scaleout.client import connect

        await self.close()
        # A command that meets a dropped connection (a stale pooled one after
        # a Redis restart) is sent again on a new one (``connect``); a timeout
        # is not: a write whose reply is lost surfaces here, so the engine can
        # undo it rather than guess. Each write is safe to run twice: SADD,
        # SREM, DEL, PEXPIRE, XDEL and the checkpoint script are idempotent,
        # the NEW script starts the order's keys afresh, a journal XADD 0-<seq>
        # that ran already fails "ID equal or smaller" (then the batch is
        # undone and its callers told to send again, as for any failed write);
        # FencedStore's scripts say why each is.
        client = connect(self.url, socket_timeout=self.timeout, connect_timeout=self.timeout)
        where = _redacted(self.url)
        try:
            await client.ping()
        except AuthenticationError as exc:
            await client.aclose()
            raise StoreUnavailable(
                f"Redis at {where} refused the credentials ({exc}); expected the password in the URL, "
                "e.g. redis://:password@host:6379/0"
            ) from exc
        except ResponseError as exc:
            await client.aclose()
            raise StoreUnavailable(f"Redis at {where} refused the connection: {exc}") from exc
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreUnavailable(
                f"cannot reach Redis at {where}: {type(exc).__name__}: {exc}. "
                "Is redis-server running there? Expected redis://host:port/db, rediss:// for TLS"
            ) from exc
        self._redis = client
        self._scripts = {name: client.register_script(lua) for name, lua in _SCRIPTS.items()}
        try:
            await self._load_scripts()
        except StoreError:
            await self.close()
            raise
        log.info("store: %r (durable as the Redis server's persistence is configured)", self)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        self._scripts = {}
        if client is not None:
            await client.aclose()

    def _client(self) -> Redis:
        if self._redis is None:
            raise StoreError(f"{self!r} is not open: the engine opens it in start()")
        return self._redis

    async def _load_scripts(self) -> None:
        """Loads the Lua scripts into the server's script cache."""
        pipe = self._client().pipeline(transaction=False)
        for script in self._scripts.values():
            pipe.script_load(script.script)
        await self._execute(pipe, "loading the Lua scripts")

    def _evalsha(self, pipe: Pipeline, name: str, keys: Sequence[str], *args: Any) -> None:
        """Queues one of the registered scripts by its digest."""
        pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)

    async def _execute_scripts(self, build: Callable[[Pipeline], None], what: str) -> list[Any]:
        """Runs the pipeline ``build`` makes; if the server lost the scripts,
        loads them and runs it once more. Only for pipelines that are safe to
        run twice (checkpoints, loads)."""
        pipe = self._client().pipeline(transaction=False)
        build(pipe)
        results = await self._execute(pipe, what, noscript_ok=True)
        if not any(_is_noscript(r) for r in results):
            return results
        await self._load_scripts()
        pipe = self._client().pipeline(transaction=False)
        build(pipe)
        return await self._execute(pipe, what)

    async def _execute(self, pipe: Pipeline, what: str, noscript_ok: bool = False) -> list[Any]:
        """Runs a pipeline; connection trouble becomes StoreUnavailable and a
        command's error StoreError (a NOSCRIPT error is returned in its place
        with ``noscript_ok``)."""
        from redis.exceptions import RedisError, ResponseError

        try:
            results: list[Any] = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            if isinstance(exc, ResponseError):
                raise StoreError(f"{what} failed in Redis at {_redacted(self.url)}: {exc}") from exc
            raise StoreUnavailable(
                f"{what} failed: Redis at {_redacted(self.url)} unreachable ({type(exc).__name__}: {exc})"
            ) from exc
        for r in results:
            if isinstance(r, Exception) and not (noscript_ok and _is_noscript(r)):
                raise StoreError(f"{what} failed in Redis at {_redacted(self.url)}: {r}")
        return results

    async def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers."""
        pipe = self._client().pipeline(transaction=False)
        pipe.ping()
        await self._execute(pipe, "ping")

    # -- journal ----------------------------------------------------------------

    def _queue_entry(self, pipe: Pipeline, e: Entry) -> None:
        order_key, journal, checkpoint = self.keys(e.order_id)
        if e.kind == NEW:
            # Index first: a crash before the order's keys leaves an index
            # entry that recovery drops, never an order nobody recovers.
            pipe.sadd(self.index_key, e.order_id)
            self._evalsha(pipe, "new", (order_key, journal, checkpoint), self.encode(e.item), e.seq)
        else:
            # NOMKSTREAM: no entry for an order that is gone (completed).
            pipe.xadd(journal, {"k": e.kind, "v": self.encode(e.item)}, id=f"0-{e.seq}", nomkstream=True)

    async def _write_entries(self, entries: Sequence[Entry], noscript_ok: bool) -> list[Any]:
        """One reply per entry (the script's or XADD's; a NEW's SADD skipped)."""
        pipe = self._client().pipeline(transaction=False)
        for e in entries:
            self._queue_entry(pipe, e)
        results = await self._execute(pipe, f"journal write of {len(entries)} entries", noscript_ok)
        replies, i = [], 0
        for e in entries:
            if e.kind == NEW:
                i += 1  # the SADD
            replies.append(results[i])
            i += 1
        return replies

    async def append(self, entries: Sequence[Entry]) -> list[bool]:
        replies = await self._write_entries(entries, noscript_ok=True)
        lost = {e.order_id for e, r in zip(entries, replies, strict=True) if _is_noscript(r)}
        if lost:
            # The server lost its scripts: the NEWs of `lost` were not written,
            # nor (NOMKSTREAM) the entries after them. Everything else was.
            await self._load_scripts()
            again = [k for k, e in enumerate(entries) if e.order_id in lost]
            for k, reply in zip(
                again, await self._write_entries([entries[k] for k in again], False), strict=True
            ):
                replies[k] = reply
        return [r is not None for r in replies]

    async def discard(self, entries: Sequence[Entry]) -> None:
        pipe = self._client().pipeline(transaction=False)
        for e in entries:
            order_key, journal, checkpoint = self.keys(e.order_id)
            if e.kind == NEW:
                pipe.delete(order_key, journal, checkpoint)
                pipe.srem(self.index_key, e.order_id)
            else:
                pipe.xdel(journal, f"0-{e.seq}")
        await self._execute(pipe, f"discarding {len(entries)} unconfirmed journal entries")

    async def checkpoint(self, checkpoints: Sequence[Checkpoint]) -> None:
        def build(pipe: Pipeline) -> None:
            for c in checkpoints:
                order_key, journal, checkpoint = self.keys(c.order_id)
                flag, state = ("0", b"") if c.state is None else ("1", c.state)
                self._evalsha(pipe, "checkpoint", (checkpoint, journal, order_key), c.applied, flag, state)

        await self._execute_scripts(build, f"checkpoint of {len(checkpoints)} orders")

    async def remove(self, order_ids: Sequence[str]) -> None:
        pipe = self._client().pipeline(transaction=False)
        for order_id in order_ids:
            keys = self.keys(order_id)
            # The order's keys first, then the index: a crash in between
            # leaves an index entry that recovery drops.
            if self.retention is None:
                pipe.delete(*keys)
            else:
                ms = int(self.retention * 1000)
                for key in keys:
                    pipe.pexpire(key, ms)
            pipe.srem(self.index_key, order_id)
        await self._execute(pipe, f"removal of {len(order_ids)} completed orders")

    # -- recovery ---------------------------------------------------------------

    async def live_orders(self) -> list[str]:
        pipe = self._client().pipeline(transaction=False)
        pipe.smembers(self.index_key)
        (members,) = await self._execute(pipe, "reading the live-order index")
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def load(self, order_ids: Iterable[str]) -> list[StoredOrder]:
        ids = list(order_ids)
        found: list[StoredOrder] = []
        for start in range(0, len(ids), _CHUNK):
            found.extend(await self._load_chunk(ids[start : start + _CHUNK]))
        return found

    async def _load_replies(self, ids: list[str]) -> list[Any]:
        """The load script's reply per order (None: the order is gone)."""

        def build(pipe: Pipeline) -> None:
            for order_id in ids:
                self._evalsha(pipe, "load", self.keys(order_id))

        return await self._execute_scripts(build, f"loading {len(ids)} orders")

    async def _load_chunk(self, ids: list[str]) -> list[StoredOrder]:
        loads = self.decode
        results = await self._load_replies(ids)
        found, stale = [], []
        for order_id, reply in zip(ids, results, strict=True):
            if reply is None:
                stale.append(order_id)
                continue
            raw, applied, state, has_state, last_id = reply[:5]
            order = loads(raw)
            entries = []
            for n in range(5, len(reply), 3):
                kind = reply[n + 1].decode()
                item = order if kind == NEW else loads(reply[n + 2])
                entries.append(Entry(order_id, _seq(reply[n]), kind, item))
            last = max([int(applied), _seq(last_id)] + [e.seq for e in entries])
            found.append(StoredOrder(order, int(applied), state if has_state else None, entries, last))
        if stale:
            log.warning(
                "dropping %d index entries without an order (a NEW that never completed its write): %s",
                len(stale),
                ", ".join(stale[:10]),
            )
            pipe = self._client().pipeline(transaction=False)
            pipe.srem(self.index_key, *stale)
            await self._execute(pipe, "dropping stale index entries")
        return found
