"""Binance WebSocket frames -> rows: closed 1m klines and trades. Pure Python, no I/O.

Both frame shapes are read: combined streams wrap each event as ``{"stream": ..., "data": ...}``,
raw streams send the event itself. Control answers (``{"result": null, "id": 1}``) are not events.
A frame that is not what Binance documents raises :class:`MalformedFrame`, naming the field: the
caller counts and logs it, never stops on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from crypto_assets.ingestion.binance import INTERVAL_MS

KLINE_STREAM = "kline_1m"
TRADE_STREAM = "trade"


class MalformedFrame(ValueError):
    """A frame that is not a documented Binance event (bad JSON, a missing or mistyped field)."""


@dataclass(frozen=True)
class StreamKline:
    """A closed kline (``k.x`` true), in the raw klines' fields."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str
    event_time: int
    first_trade_id: int = -1  # the minute's first and last trade ids (k.f, k.L; -1: no trade)
    last_trade_id: int = -1

    @property
    def key(self) -> tuple[str, str, int]:
        return self.symbol, self.interval, self.open_time


@dataclass(frozen=True)
class StreamTrade:
    symbol: str
    trade_id: int
    price: str
    quantity: str
    trade_time: int
    buyer_is_maker: bool
    event_time: int

    @property
    def key(self) -> tuple[str, int]:
        return self.symbol, self.trade_id


Event = StreamKline | StreamTrade


def stream_names(pairs: list[str]) -> list[str]:
    """The streams of ``pairs``: each pair's closed-1m kline stream and its trade stream."""
    return [f"{pair.lower()}@{kind}" for pair in sorted(pairs) for kind in (KLINE_STREAM, TRADE_STREAM)]


def parse_frame(text: str | bytes) -> Event | None:
    """One WebSocket text frame -> a closed kline, a trade, or None (a kline still open, a
    control answer). Raises :class:`MalformedFrame`."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise MalformedFrame(f"not JSON: {str(text)[:80]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedFrame(f"not a JSON object: {str(text)[:80]!r}")
    if "result" in message and "id" in message:
        return None  # the answer to SUBSCRIBE / LIST_SUBSCRIPTIONS
    if "error" in message:
        raise MalformedFrame(f"error frame: {message['error']!r}")
    data = message.get("data", message) if "stream" in message else message
    if not isinstance(data, dict):
        raise MalformedFrame(f"'data' is not an object: {str(text)[:80]!r}")
    kind = data.get("e")
    if kind == "kline":
        return _kline(data)
    if kind == "trade":
        return _trade(data)
    raise MalformedFrame(f"unknown event type {kind!r}")


def _kline(data: dict[str, Any]) -> StreamKline | None:
    k = data.get("k")
    if not isinstance(k, dict):
        raise MalformedFrame("kline event without a 'k' object")
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise MalformedFrame(f"kline 'x' must be a boolean, got {closed!r}")
    if not closed:
        return None
    interval = _text(k, "i")
    if interval not in INTERVAL_MS:
        raise MalformedFrame(f"kline interval {interval!r} is not one of Binance's")
    open_time, close_time = _int(k, "t"), _int(k, "T")
    if close_time != open_time + INTERVAL_MS[interval] - 1:
        raise MalformedFrame(
            f"kline {k.get('s')} {open_time}: close time {close_time} does not end the {interval}"
        )
    prices = {
        name: _price(k, field) for name, field in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"))
    }
    if not (Decimal(prices["low"]) <= min(Decimal(prices["open"]), Decimal(prices["close"]))):
        raise MalformedFrame(f"kline {k.get('s')} {open_time}: low above open or close")
    if not (Decimal(prices["high"]) >= max(Decimal(prices["open"]), Decimal(prices["close"]))):
        raise MalformedFrame(f"kline {k.get('s')} {open_time}: high below open or close")
    return StreamKline(
        symbol=_symbol(k, "s"),
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        **prices,
        volume=_amount(k, "v"),
        quote_volume=_amount(k, "q"),
        trade_count=_int(k, "n"),
        taker_buy_base_volume=_amount(k, "V"),
        taker_buy_quote_volume=_amount(k, "Q"),
        event_time=_int(data, "E"),
        first_trade_id=_trade_id(k, "f"),
        last_trade_id=_trade_id(k, "L"),
    )


def _trade(data: dict[str, Any]) -> StreamTrade:
    maker = data.get("m")
    if not isinstance(maker, bool):
        raise MalformedFrame(f"trade 'm' must be a boolean, got {maker!r}")
    return StreamTrade(
        symbol=_symbol(data, "s"),
        trade_id=_int(data, "t"),
        price=_price(data, "p"),
        quantity=_price(data, "q"),
        trade_time=_int(data, "T"),
        buyer_is_maker=maker,
        event_time=_int(data, "E"),
    )


def _text(obj: dict[str, Any], field: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedFrame(f"field {field!r} must be a non-empty string, got {value!r}")
    return value


def _symbol(obj: dict[str, Any], field: str) -> str:
    value = _text(obj, field)
    if not value.isalnum() or not value.isupper():
        raise MalformedFrame(f"field {field!r} is not a pair: {value!r}")
    return value


def _trade_id(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field, -1)
    if not isinstance(value, int) or isinstance(value, bool) or value < -1:
        raise MalformedFrame(f"field {field!r} must be a trade id or -1, got {value!r}")
    return value


def _int(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedFrame(f"field {field!r} must be a non-negative integer, got {value!r}")
    return value


def _decimal(obj: dict[str, Any], field: str) -> tuple[str, Decimal]:
    value = obj.get(field)
    if not isinstance(value, str):
        raise MalformedFrame(f"field {field!r} must be a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise MalformedFrame(f"field {field!r} is not a number: {value!r}") from None
    if not number.is_finite():
        raise MalformedFrame(f"field {field!r} is not finite: {value!r}")
    return value, number


def _price(obj: dict[str, Any], field: str) -> str:
    value, number = _decimal(obj, field)
    if number <= 0:
        raise MalformedFrame(f"field {field!r} must be positive, got {value!r}")
    return value


def _amount(obj: dict[str, Any], field: str) -> str:
    value, number = _decimal(obj, field)
    if number < 0:
        raise MalformedFrame(f"field {field!r} must not be negative, got {value!r}")
    return value
