"""The ``exo`` command (also ``python -m exo``).

    exo example                         # replay of the bundled sample, in-process store, 127.0.0.1:8000
    exo example --feed coinbase --redis redis://localhost:6379/0

Every flag of ``exo example`` can also come from an environment variable
(the flag wins): see ``ENV`` and ``exo example --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence

import exo

__all__ = ["ENV", "main"]

ENV = {
    "feed": "EXO_FEED",
    "speed": "EXO_SPEED",
    "redis": "EXO_REDIS_URL",
    "http": "EXO_HTTP",
    "idle": "EXO_IDLE",
    "token": "EXO_TOKEN",
    "summary": "EXO_SUMMARY",
    "keep_done": "EXO_KEEP_DONE",
    "log_level": "EXO_LOG_LEVEL",
    "venue": "EXO_VENUE",
    "testnet": "EXO_TESTNET",
    "role": "EXO_ROLE",
    "name": "EXO_NAME",
    "lease": "EXO_LEASE",
    "partitions": "EXO_PARTITIONS",
}
"""Environment variable per ``exo example`` option."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}")
    return value


def _speed(text: str) -> float | None:
    if text.strip().lower() in ("max", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor such as 1.0, or max; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive factor, or max; got {text!r}")
    return value


def _partitions(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1024, got {text!r}")
    return int(text)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8000, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"  # [::1]:8000 and :8000 work too
    return host, int(port)


def _env(option: str, default: str | None) -> str | None:
    return os.environ.get(ENV[option], default)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="exo",
        description="exo: an exoskeleton for automated order execution (Rust core, Python delegates).",
    )
    top.add_argument("--version", action="version", version=f"exo {exo.__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    ex = commands.add_parser(
        "example",
        help="run the example: orders over HTTP, paper fills on replayed or live quotes",
        description=(
            "Orders over HTTP (POST/GET/DELETE /v1/orders), each worked through child orders sent "
            "to a venue (the paper venue fills them against the live quotes); every fill report "
            "prints as '<order_id> fill <qty> @ <px>'. By default it "
            "replays the bundled Coinbase sample in a loop and keeps orders in process: no "
            "network, no Redis. Ctrl-C or SIGTERM stops it (live orders are cleaned up, not "
            "canceled). Each option can also be set by the environment variable shown."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ex.add_argument(
        "--feed",
        default=_env("feed", "replay"),
        metavar="coinbase|binance|bitmex|replay|replay:PATH",
        help=f"market data: a live venue, the bundled sample, or an NDJSON recording [{ENV['feed']}]",
    )
    ex.add_argument(
        "--venue",
        default=_env("venue", "paper"),
        choices=["paper", "binance", "bitmex", "fix"],
        type=str.lower,
        help=f"where child orders go: paper fills them in process against the feed; binance, bitmex "
        f"and fix read their keys and endpoints from EXO_BINANCE_*, EXO_BITMEX_*, EXO_FIX_* "
        f"(never from flags; see README) [{ENV['venue']}]",
    )
    ex.add_argument(
        "--testnet",
        action="store_true",
        default=_env("testnet", "") in ("1", "true", "yes"),
        help=f"binance/bitmex: use the venue's testnet [{ENV['testnet']}]",
    )
    ex.add_argument(
        "--speed",
        type=_speed,
        default=_env("speed", "1.0"),
        help=f"replay pace: 1.0 as recorded, 10 ten times faster, max as fast as possible [{ENV['speed']}]",
    )
    # --redis and --token fall back on their env vars after parsing, so that
    # --help never prints a password or a token.
    ex.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="keep orders in Redis (redis://[[user]:password@]host[:port][/db], rediss://, unix://, "
        "or a Redis Cluster: redis+cluster://host:port[,host:port...]) so a restart resumes them "
        f"[{ENV['redis']}]",
    )
    ex.add_argument(
        "--http",
        type=_host_port,
        default=_env("http", "127.0.0.1:8000"),
        metavar="HOST:PORT",
        help=f"where the HTTP API listens [{ENV['http']}]",
    )
    ex.add_argument(
        "--idle",
        type=_positive,
        default=_env("idle", "1.0"),
        metavar="SECONDS",
        help=f"a delegate with no news for this long gets an idle Update [{ENV['idle']}]",
    )
    ex.add_argument(
        "--token",
        default=None,
        help=f"require 'Authorization: Bearer TOKEN' on /v1 (prefer the env var: flags show in ps) "
        f"[{ENV['token']}]",
    )
    ex.add_argument(
        "--summary",
        type=_non_negative,
        default=_env("summary", "1.0"),
        metavar="SECONDS",
        help=f"log a summary line per live order this often; 0 turns it off [{ENV['summary']}]",
    )
    ex.add_argument(
        "--keep-done",
        type=_count,
        default=_env("keep_done", "10000"),
        metavar="N",
        help=f"finished orders kept for GET /v1/orders/{{id}} (the oldest go first) [{ENV['keep_done']}]",
    )
    ex.add_argument(
        "--role",
        default=_env("role", "all"),
        choices=["all", "api", "engine"],
        type=str.lower,
        help=f"scale-out: all = one process; api = HTTP only, orders go to the engines through Redis "
        f"streams; engine = takes orders from them (api and engine need --redis) [{ENV['role']}]",
    )
    ex.add_argument(
        "--name",
        default=_env("name", None),
        help="engine role: this engine's name, unique among the engines and the same at each restart "
        "(a restarted engine reads the entries it had pending); default <host>-<port of --http>, "
        f"e.g. {socket.gethostname()}-8101 [{ENV['name']}]",
    )
    ex.add_argument(
        "--lease",
        type=_positive,
        default=_env("lease", "2.0"),
        metavar="SECONDS",
        help=f"engine role: order lease; a dead engine's orders move after about this long [{ENV['lease']}]",
    )
    ex.add_argument(
        "--partitions",
        type=_partitions,
        default=_env("partitions", "4"),
        metavar="N",
        help=f"api and engine roles: intake streams, the same in every process [{ENV['partitions']}]",
    )
    ex.add_argument(
        "--log-level",
        default=_env("log_level", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help=f"logging level (logs go to stderr; fills to stdout) [{ENV['log_level']}]",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    return _example(args)


def _example(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        from exo.example.runner import Settings, run
    except ImportError as exc:
        print(
            f"exo example needs FastAPI, uvicorn and prometheus-client ({exc}): "
            "pip install 'exo-execution[example]'",
            file=sys.stderr,
        )
        return 2
    host, port = args.http
    settings = Settings(
        feed=args.feed,
        speed=args.speed,
        redis=args.redis or _env("redis", None) or None,
        host=host,
        port=port,
        idle=args.idle,
        token=args.token or _env("token", None) or None,
        summary=args.summary,
        keep_done=args.keep_done,
        venue=args.venue,
        testnet=args.testnet,
        role=args.role,
        name=args.name,
        lease=args.lease,
        partitions=args.partitions,
    )
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
