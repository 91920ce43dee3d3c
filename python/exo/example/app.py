"""The example's HTTP API (FastAPI): order entry, progress, cancel, metrics.

    POST   /v1/orders        {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"} -> 202 {"orderID": ...}
                             optional: "ordType" MARKET|LIMIT, "price" (a LIMIT), "timeInForce"
                             GTC|IOC|FOK|POST_ONLY; a symbol the venue does not list is a 400
    GET    /v1/orders        the live orders
    GET    /v1/orders/{id}   the order, its progress and its child orders, or 404
    DELETE /v1/orders/{id}   202 and a CANCEL to its delegate; 404 unknown; 409 already done
    GET    /metrics          Prometheus
    GET    /healthz          200 once the engine runs
    GET    /docs             OpenAPI (Swagger UI); /openapi.json

Every error is ``{"detail": "<what is wrong>"}`` with a 4xx status; a bad
body is a 400 that names each bad field. With a token, ``/v1`` needs
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

import exo
from exo.child import OrdType, TimeInForce
from exo.engine import Engine
from exo.example.metrics import CONTENT_TYPE, Metrics
from exo.example.paper import Book, PaperOrder
from exo.instrument import InstrumentError
from exo.market import OrdStatus
from exo.store import StoreUnavailable

__all__ = ["NewOrder", "create_app"]

_MAX_INTEGER_DIGITS, _MAX_PLACES = 15, 18
"""Bounds on orderQty, well inside what exo's exact decimals carry."""
_EXAMPLE: dict[str, JsonValue] = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"}


class NewOrder(BaseModel):
    """The body of ``POST /v1/orders``."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [_EXAMPLE]})

    side: str = Field(description="BUY or SELL (any case)")
    symbol: str = Field(description="The venue's instrument: BTC-USD on Coinbase, BTCUSDT on Binance ...")
    orderQty: Decimal = Field(description='A positive decimal, best as a string: "0.5"')
    ordType: OrdType | None = Field(
        default=None, description="MARKET (the default without a price) or LIMIT (needs a price)"
    )
    price: Decimal | None = Field(
        default=None, description='A LIMIT order\'s price, a positive decimal as a string: "60000.5"'
    )
    timeInForce: TimeInForce = Field(
        default=TimeInForce.GTC, description="GTC (default), IOC, FOK or POST_ONLY; with a price"
    )

    @field_validator("ordType", "timeInForce", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal | None:
        if value is None:
            return None
        return _positive_decimal(value, "60000.5")

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

    @field_validator("side", mode="before")
    @classmethod
    def _side(cls, value: Any) -> str:
        if isinstance(value, str) and value.strip().upper() in ("BUY", "SELL"):
            return value.strip().upper()
        raise ValueError(f"must be BUY or SELL (any case), got {json.dumps(value)}")

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f'must be a string such as "BTC-USD", got {json.dumps(value)}')
        if not value.strip():
            raise ValueError('must not be empty: name the instrument, e.g. "BTC-USD"')
        return value.strip()

    @field_validator("orderQty", mode="before")
    @classmethod
    def _order_qty(cls, value: Any) -> Decimal:
        return _positive_decimal(value, "0.5")


def _positive_decimal(value: Any, example: str) -> Decimal:
    expected = f'must be a positive decimal such as "{example}"'
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{expected}, got {json.dumps(value)}")
    try:
        qty = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{expected}, got {json.dumps(value)}") from None
    if not qty.is_finite() or qty <= 0:
        raise ValueError(f"{expected}, got {json.dumps(value)}")
    if qty.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(f"must be below 1E+{_MAX_INTEGER_DIGITS}, got {json.dumps(value)}")
    if -int(qty.as_tuple().exponent) > _MAX_PLACES:
        raise ValueError(f"must have at most {_MAX_PLACES} decimal places, got {json.dumps(value)}")
    if int(qty.as_tuple().exponent) > 0:  # 1E+3 -> 1000
        qty = qty.quantize(Decimal(1))
    return qty


def _explain(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """One sentence per bad field, e.g. ``orderQty: must be a positive decimal ...``."""
    errors = []
    for e in exc.errors(include_url=False):
        field = ".".join(str(part) for part in e["loc"]) or "body"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "is required"
        elif e["type"] == "model_type":
            field, message = "body", "must be a JSON object with side, symbol and orderQty"
        errors.append({"field": field, "message": message})
    return "; ".join(f"{e['field']} {e['message']}" for e in errors), errors


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def create_app(engine: Engine, book: Book, metrics: Metrics, token: str | None = None) -> FastAPI:
    """The API over a running ``engine`` whose delegates keep ``book``."""
    app = FastAPI(
        title="exo example",
        version=exo.__version__,
        summary="Orders over HTTP, filled on paper against the far side of each quote.",
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
    v1 = APIRouter(prefix="/v1", dependencies=dependencies, tags=["orders"])

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @v1.post(
        "/orders",
        status_code=202,
        summary="Submit a NEW order",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NewOrder.model_json_schema()}},
            }
        },
        responses={202: {"description": "Accepted: the order is live"}, 400: {"description": "Bad body"}},
    )
    async def submit(request: Request) -> JSONResponse:
        # The body is parsed here rather than by FastAPI so that every bad body
        # is a 400 with a plain sentence, and `curl -d` works without a
        # Content-Type header.
        raw = await request.body()
        if not raw.strip():
            return _error(400, 'empty body: send {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5"}')
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"malformed JSON body: {exc}")
        try:
            new = NewOrder.model_validate(payload)
        except ValidationError as exc:
            detail, errors = _explain(exc)
            return _error(400, detail, errors=errors)
        venue = book.venue
        if venue is not None:
            try:  # refused at entry, rather than sitting NEW forever
                venue.instrument(new.symbol).check(new.orderQty, new.price)
            except InstrumentError as exc:
                return _error(400, str(exc))
        order = PaperOrder(
            new.side,
            new.symbol,
            order_qty=new.orderQty,
            price=new.price,
            ord_type=new.ordType,
            time_in_force=new.timeInForce,
        )
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

    @v1.get("/orders", summary="The live orders and their progress")
    async def live() -> dict[str, Any]:
        return {"orders": [p.to_json() for p in book.live()]}

    @v1.get(
        "/orders/{order_id}",
        summary="An order and its progress",
        responses={404: {"description": "No such order"}},
    )
    async def get(order_id: str) -> JSONResponse:
        progress = book.get(order_id)
        if progress is None:
            return _error(404, f"no order {order_id!r}")
        return JSONResponse(progress.to_json())

    @v1.delete(
        "/orders/{order_id}",
        status_code=202,
        summary="Cancel an order: a CANCEL instruction to its delegate",
        responses={404: {"description": "No such order"}, 409: {"description": "Already filled or canceled"}},
    )
    async def cancel(order_id: str) -> JSONResponse:
        progress = book.get(order_id)
        if progress is None:
            return _error(404, f"no order {order_id!r}")
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

    @app.get("/metrics", summary="Prometheus metrics", tags=["operations"])
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="200 while the engine runs", tags=["operations"])
    async def healthz() -> JSONResponse:
        if not engine.running:
            return _error(503, "the engine is not running")
        return JSONResponse({"status": "ok", "live": engine.live})

    return app


class _Unauthorized(Exception):
    """401 with a reason."""
