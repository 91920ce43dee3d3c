"""The example's HTTP API (FastAPI): order entry, progress, cancel, metrics.

    POST   /v1/orders        {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"} -> 202 {"orderID": ...}
                             optional: "ordType" MARKET|LIMIT, "price" (a LIMIT), "timeInForce"
                             GTC|IOC|FOK|POST_ONLY; a symbol the venue does not list, a quantity
                             off its lot or a price off its tick is a 400
    GET    /v1/orders        the live orders
    GET    /v1/orders/{id}   the order, its progress and its child orders, or 404
    DELETE /v1/orders/{id}   202 and a CANCEL to its delegate; 404 unknown; 409 already done
    GET    /metrics          Prometheus
    GET    /healthz          200 once the engine runs
    GET    /docs             OpenAPI (Swagger UI); /openapi.json

Every error is ``{"detail": "<what is wrong>"}``: a bad body is a 400 that
names each bad field (and ``errors``, one entry per field), a body over
``MAX_BODY_BYTES`` a 413, a store that cannot take the order a 503. No input
gives a 5xx otherwise: the body is bounded before it is read, its nesting and
number lengths before it is parsed, and numbers are kept as their text
(``orderQty`` goes through ``exo.parse_decimal``, the one grammar of the Rust
core). Values echoed back are JSON-escaped and cut (``_show``). With a token,
``/v1`` needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.security import HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

import exo
from exo.child import OrdType, TimeInForce
from exo.engine import Engine
from exo.example.metrics import CONTENT_TYPE, Metrics
from exo.example.paper import Book, PaperOrder
from exo.instrument import InstrumentError
from exo.market import OrdStatus, Side, parse_decimal
from exo.store import StoreUnavailable
from exo.venues import Venue

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "SYMBOL",
    "NewOrder",
    "create_app",
    "read_new_order",
]

MAX_BODY_BYTES = 16 * 1024
"""A NEW is ~60 bytes; a larger body is refused (413) before it is read in full."""
MAX_DEPTH = 16
"""Deepest nesting of ``[``/``{`` accepted, checked before parsing (a NEW is depth 1)."""
MAX_NUMBER_CHARS = 64
"""Longest JSON number literal accepted, checked before parsing."""
SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,31}")
"""A symbol: 1 to 32 ASCII characters, upper-case letters, digits and ``. _ / -``,
starting with a letter or digit (BTC-USD, BTCUSDT, XBTUSD, ETH/USD ...)."""
DECIMAL_PATTERN = r"^(?=[0-9.]*[1-9])[0-9]{1,15}(\.[0-9]{1,13})?$"
"""exo's grammar for prices and quantities (``exo.parse_decimal``), as a JSON Schema pattern."""
_ECHO = 40
"""At most this many characters of a bad value are echoed back."""
_EXAMPLE: dict[str, JsonValue] = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"}


class _Number(str):
    """A JSON number's literal text, kept as written (never through a float)."""


def _as_json(value: Any) -> str:
    """``value`` as JSON text, numbers as they were written."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_as_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_as_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _show(value: Any) -> str:
    """A bad value for a message: JSON-escaped (no raw control characters) and bounded."""
    text = _as_json(value)
    return text if len(text) <= _ECHO else f"{text[:_ECHO]}... ({len(text)} chars)"


class NewOrder(BaseModel):
    """The body of ``POST /v1/orders``. Fields not listed here are refused (400 naming them)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    side: Annotated[
        str, WithJsonSchema({"type": "string", "pattern": "^([Bb][Uu][Yy]|[Ss][Ee][Ll][Ll])$"})
    ] = Field(description="BUY or SELL, ASCII letters in any case")
    symbol: Annotated[str, WithJsonSchema({"type": "string", "pattern": f"^{SYMBOL.pattern}$"})] = Field(
        description="The venue's instrument, 1-32 of A-Z 0-9 . _ / - (BTC-USD, BTCUSDT, XBTUSD)"
    )
    orderQty: Annotated[Decimal, WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN})] = Field(
        description="A positive decimal: 1-15 digits, optionally a point and 1-13 more, no sign or exponent "
        '("0.5"); a JSON number written the same way is read exactly'
    )

    @field_validator("side", mode="before")
    @classmethod
    def _side(cls, value: Any) -> str:
        if isinstance(value, str) and not isinstance(value, _Number):
            try:
                return Side.parse(value).name  # ASCII case-insensitive: "\u017fell" (long s) is not SELL
            except ValueError:
                pass
        raise ValueError(f"must be BUY or SELL (ASCII, any case), got {_show(value)}")

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: Any) -> str:
        if not isinstance(value, str) or isinstance(value, _Number):
            raise ValueError(f'must be a string such as "BTC-USD", got {_show(value)}')
        if not value:
            raise ValueError('must not be empty: name the instrument, e.g. "BTC-USD"')
        if not SYMBOL.fullmatch(value):
            raise ValueError(
                "must be 1-32 characters of A-Z 0-9 . _ / - starting with a letter or digit "
                f"(upper case, as the venue writes it), got {_show(value)}"
            )
        return value

    ordType: Annotated[OrdType | None, WithJsonSchema({"type": "string", "enum": ["MARKET", "LIMIT"]})] = (
        Field(default=None, description="MARKET (the default without a price) or LIMIT (needs a price)")
    )
    price: Annotated[Decimal | None, WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN})] = Field(
        default=None, description='A LIMIT order\'s price, in the same grammar as orderQty ("60000.5")'
    )
    timeInForce: Annotated[
        TimeInForce, WithJsonSchema({"type": "string", "enum": ["GTC", "IOC", "FOK", "POST_ONLY"]})
    ] = Field(default=TimeInForce.GTC, description="GTC (default), IOC, FOK or POST_ONLY; with a price")

    @field_validator("orderQty", "price", mode="before")
    @classmethod
    def _decimal(cls, value: Any, info: ValidationInfo) -> Decimal | None:
        if value is None and info.field_name == "price":
            return None
        if not isinstance(value, str):  # a JSON number arrives as _Number, its text
            raise ValueError(f'must be a positive decimal such as "0.5", got {_show(value)}')
        try:
            return parse_decimal(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, got {_show(value)}") from None

    @field_validator("ordType", "timeInForce", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and not isinstance(value, _Number) and value.isascii():
            return value.upper()
        raise ValueError(f"must be one of the names listed (ASCII, any case), got {_show(value)}")

    @model_validator(mode="after")
    def _limit(self) -> NewOrder:
        if self.ordType is None:
            self.ordType = OrdType.LIMIT if self.price is not None else OrdType.MARKET
        if self.ordType is OrdType.LIMIT and self.price is None:
            raise ValueError("needs a price for ordType LIMIT")
        if self.ordType is OrdType.MARKET and self.price is not None:
            raise ValueError("has a price, which a MARKET order must not have (send ordType LIMIT)")
        if self.ordType is OrdType.MARKET and self.timeInForce is not TimeInForce.GTC:
            raise ValueError(
                "has timeInForce, which applies to a LIMIT order only (a MARKET order takes what is shown)"
            )
        return self


class OrderAccepted(BaseModel):
    """202 to a NEW: the order is live under ``orderID``."""

    orderID: str


class CancelAccepted(BaseModel):
    """202 to a DELETE: a CANCEL is on its way to the order's delegate."""

    orderID: str
    ordStatus: str = Field(description="PENDING_CANCEL")


class ChildView(BaseModel):
    """One child order sent to the venue (FIX names; decimals as strings)."""

    clOrdID: str | None
    secondaryOrderID: str | None
    ordType: str
    timeInForce: str
    price: str | None
    orderQty: str
    cumQty: str
    leavesQty: str
    avgPx: str | None
    ordStatus: str | None
    text: str | None


class OrderView(BaseModel):
    """An order, its progress and its child orders (FIX names; decimals as strings)."""

    orderID: str
    side: str
    symbol: str
    orderQty: str
    ordType: str
    price: str | None
    timeInForce: str
    cumQty: str
    leavesQty: str
    avgPx: str | None
    ordStatus: str
    fills: int
    childOrders: list[ChildView]
    childOrdersDropped: int = Field(description="closed child orders no longer listed (kept small)")
    childOrdersDroppedCumQty: str = Field(description="what those dropped children filled")


class OrderList(BaseModel):
    """The live orders."""

    orders: list[OrderView]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx: a sentence, and for a bad body one entry per bad field."""

    detail: str
    errors: list[FieldError] | None = None


class Health(BaseModel):
    status: str
    live: int


def _explain(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """One sentence per bad field, e.g. ``orderQty must be a positive decimal ...``;
    an unknown field is named in quotes in the sentence and bare in ``errors``
    (both JSON-escaped and cut, as sent: ``"price" is not a field ...``)."""
    errors, sentences = [], []
    for e in exc.errors(include_url=False):
        field = ".".join(str(part) for part in e["loc"]) or "body"
        message = e["msg"].removeprefix("Value error, ")
        shown = field
        if e["type"] == "missing":
            message = "is required"
        elif e["type"] == "extra_forbidden":
            shown = _show(field)
            field = json.dumps(field)[1:-1][:_ECHO]
            message = f"is not a field of a NEW order (the fields are {', '.join(NewOrder.model_fields)})"
        elif e["type"] == "model_type":
            field = shown = "body"
            message = "must be a JSON object with side, symbol and orderQty"
        errors.append({"field": field, "message": message})
        sentences.append(f"{shown} {message}")
    return "; ".join(sentences), errors


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NUMBER_RUN = re.compile(rb"[-+0-9.eE]{%d,}" % (MAX_NUMBER_CHARS + 1))
_BRACKETS = re.compile(rb"[\[\]{}]")


def _check_shape(raw: bytes) -> str | None:
    """What is wrong with the body's shape, checked without parsing it (so
    no nesting or number can exhaust the parser), or None."""
    bare = _STRINGS.sub(b'""', raw)
    if _NUMBER_RUN.search(bare):
        return f"a number in the body is longer than {MAX_NUMBER_CHARS} characters"
    depth = 0
    for m in _BRACKETS.finditer(bare):
        depth += 1 if m[0] in b"[{" else -1
        if depth > MAX_DEPTH:
            return f"the body nests deeper than {MAX_DEPTH} levels"
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"field {_show(key)} appears twice")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(raw: bytes) -> Any:
    """The JSON body with every number kept as its literal text (``_Number``).

    Raises ValueError with a sentence for a user."""
    problem = _check_shape(raw)
    if problem is not None:
        raise ValueError(problem)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed JSON body: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        payload = json.loads(
            text,
            parse_float=_Number,
            parse_int=_Number,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON body: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"malformed JSON body: {exc}") from None
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" alone is valid JSON text but no Unicode character (RFC 8259 8.2).
        raise ValueError(
            "malformed JSON body: a \\u escape is a lone UTF-16 surrogate, not a character"
        ) from None
    return payload


class _TooLarge(Exception):
    """The body is over MAX_BODY_BYTES."""


async def _read_body(request: Request) -> bytes:
    """The body, refused (``_TooLarge``) as soon as it is known to be too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad body: each bad field named"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token (with --token)"},
}


async def read_new_order(request: Request, venue: Venue | None = None) -> PaperOrder | JSONResponse:
    """The NEW order in a POST body, or the 4xx response that says what is wrong
    (shared by the single process and the scale-out api role). With a
    ``venue``, a symbol it does not list, or a quantity/price its instrument
    refuses, is a 400."""
    try:
        raw = await _read_body(request)
    except _TooLarge:
        return _error(
            413, f"body too large: a NEW order is a small JSON object, at most {MAX_BODY_BYTES} bytes"
        )
    if not raw.strip():
        return _error(400, 'empty body: send {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"}')
    try:
        payload = parse_body(raw)
    except ValueError as exc:
        return _error(400, str(exc))
    try:
        new = NewOrder.model_validate(payload)
    except ValidationError as exc:
        detail, errors = _explain(exc)
        return _error(400, detail, errors=errors)
    if venue is not None:
        try:  # refused at entry, rather than sitting NEW forever
            venue.instrument(new.symbol).check(new.orderQty, new.price)
        except InstrumentError as exc:
            return _error(400, str(exc))
    return PaperOrder(
        new.side,
        new.symbol,
        order_qty=new.orderQty,
        price=new.price,
        ord_type=new.ordType,
        time_in_force=new.timeInForce,
    )


def create_app(engine: Engine, book: Book, metrics: Metrics, token: str | None = None) -> FastAPI:
    """The API over a running ``engine`` whose delegates keep ``book``."""
    # FastAPIOffline serves the Swagger UI's JS and CSS from the fastapi-offline
    # package, so /docs works without internet.
    app = FastAPIOffline(
        title="exo example",
        version=exo.__version__,
        summary="Orders over HTTP, worked through child orders that a paper venue fills against the quotes.",
        redoc_url=None,
    )
    bearer = HTTPBearer(auto_error=False, description="Set with --token or EXO_TOKEN")

    async def authorize(request: Request) -> None:
        if token is None:
            return
        # Read by hand (not through ``bearer``) so the 401 says exactly what is wrong.
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise _Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise _Unauthorized("wrong bearer token")

    dependencies = [Depends(authorize)] if token is None else [Depends(authorize), Depends(bearer)]
    v1 = APIRouter(
        prefix="/v1",
        dependencies=dependencies,
        tags=["orders"],
        responses={401: _ERRORS[401]} if token is not None else {},
    )

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # No route takes a parameter FastAPI could refuse; kept so that one never gives a 422.
        return _error(400, "; ".join(str(e.get("msg", e)) for e in exc.errors()))

    @v1.post(
        "/orders",
        status_code=202,
        summary="Submit a NEW order",
        response_model=OrderAccepted,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NewOrder.model_json_schema()}},
            }
        },
        responses={
            202: {"description": "Accepted: the order is live; Location names it"},
            400: _ERRORS[400],
            413: {"model": ErrorBody, "description": f"Body over {MAX_BODY_BYTES} bytes"},
            503: {"model": ErrorBody, "description": "Store unavailable or engine stopping: not accepted"},
        },
    )
    async def submit(request: Request) -> JSONResponse:
        # The body is parsed here rather than by FastAPI so that every bad body
        # is a 400 with a plain sentence, numbers are read exactly, and
        # `curl -d` works without a Content-Type header.
        order = await read_new_order(request, book.venue)
        if isinstance(order, JSONResponse):
            return order
        try:
            order_id = await engine.submit(order)
        except StoreUnavailable as exc:
            return _error(503, f"store unavailable, the order was not accepted: {exc}")
        except RuntimeError as exc:  # the engine is stopping
            return _error(503, str(exc))
        if order_id is None:
            return _error(503, "the engine refused the order (see the log)")
        book.track(order)
        location = {"Location": f"/v1/orders/{order_id}"}
        return JSONResponse({"orderID": order_id}, status_code=202, headers=location)

    @v1.get("/orders", summary="The live orders and their progress", response_model=OrderList)
    async def live() -> dict[str, Any]:
        return {"orders": [p.to_json() for p in book.live()]}

    @v1.get(
        "/orders/{order_id}",
        summary="An order and its progress",
        response_model=OrderView,
        responses={404: {"model": ErrorBody, "description": "No such order"}},
    )
    async def get(order_id: str) -> JSONResponse:
        progress = book.get(order_id)
        if progress is None:
            return _error(404, f"no order {_show(order_id)}")
        return JSONResponse(progress.to_json())

    @v1.delete(
        "/orders/{order_id}",
        status_code=202,
        summary="Cancel an order: a CANCEL instruction to its delegate",
        response_model=CancelAccepted,
        responses={
            404: {"model": ErrorBody, "description": "No such order"},
            409: {"model": ErrorBody, "description": "Already filled or canceled"},
            503: {"model": ErrorBody, "description": "Store unavailable or engine stopping: not accepted"},
        },
    )
    async def cancel(order_id: str) -> JSONResponse:
        progress = book.get(order_id)
        if progress is None:
            return _error(404, f"no order {_show(order_id)}")
        if progress.done or not engine.is_live(order_id):
            return _error(409, f"order {order_id} is already {progress.status.name}: nothing to cancel")
        try:
            accepted = await engine.submit(progress.order.cancel())
        except StoreUnavailable as exc:
            return _error(503, f"store unavailable, the cancel was not accepted: {exc}")
        except RuntimeError as exc:
            return _error(503, str(exc))
        if accepted is None:
            return _error(409, f"order {order_id} is already {progress.status.name}: nothing to cancel")
        return JSONResponse(
            {"orderID": order_id, "ordStatus": OrdStatus.PENDING_CANCEL.name}, status_code=202
        )

    app.include_router(v1)

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format)",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        "/healthz",
        summary="200 while the engine runs",
        tags=["operations"],
        response_model=Health,
        responses={503: {"model": ErrorBody, "description": "The engine is not running"}},
    )
    async def healthz() -> JSONResponse:
        if not engine.running:
            return _error(503, "the engine is not running")
        return JSONResponse({"status": "ok", "live": engine.live})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    _drop_impossible_422s(app)
    return app


def _drop_impossible_422s(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with a parameter; here none can
    happen (bodies are read by hand, path parameters are plain strings)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class _Unauthorized(Exception):
    """401 with a reason."""
