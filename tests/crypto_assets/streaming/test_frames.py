"""Binance stream frames: both shapes, closed klines only, every malformed field named."""

import json

import pytest

from crypto_assets.streaming.frames import MalformedFrame, StreamKline, StreamTrade, parse_frame, stream_names

KLINE = {
    "e": "kline", "E": 1700000060123, "s": "BTCUSDT",
    "k": {"t": 1700000040000, "T": 1700000099999, "s": "BTCUSDT", "i": "1m", "f": 100, "L": 199,
          "o": "37000.10", "c": "37010.00", "h": "37020.00", "l": "36990.00", "v": "12.5", "n": 100,
          "x": True, "q": "462500.00", "V": "6.0", "Q": "222000.00", "B": "0"},
}  # fmt: skip
TRADE = {"e": "trade", "E": 1700000001000, "s": "BTCUSDT", "t": 12345, "p": "37000.10", "q": "0.015",
         "T": 1700000000999, "m": True, "M": True}  # fmt: skip


def _with(frame: dict, path: tuple[str, ...], value: object) -> str:
    copy = json.loads(json.dumps(frame))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(copy)


def test_both_frame_shapes_give_the_same_closed_kline():
    raw = parse_frame(json.dumps(KLINE))
    combined = parse_frame(json.dumps({"stream": "btcusdt@kline_1m", "data": KLINE}))
    assert raw == combined and isinstance(raw, StreamKline)
    assert raw.key == ("BTCUSDT", "1m", 1700000040000)
    assert (raw.first_trade_id, raw.last_trade_id, raw.trade_count) == (100, 199, 100)
    assert raw.close == "37010.00" and raw.event_time == 1700000060123


def test_open_klines_and_control_answers_are_not_events():
    assert parse_frame(_with(KLINE, ("k", "x"), False)) is None
    assert parse_frame(json.dumps({"result": None, "id": 3})) is None


def test_a_trade():
    trade = parse_frame(json.dumps({"stream": "btcusdt@trade", "data": TRADE}))
    assert isinstance(trade, StreamTrade) and trade.key == ("BTCUSDT", 12345) and trade.buyer_is_maker


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"e": "depthUpdate"}), "unknown event type"),
        (_with(KLINE, ("k", "x"), "true"), "'x' must be a boolean"),
        (_with(KLINE, ("k", "o"), "abc"), "'o' is not a number"),
        (_with(KLINE, ("k", "c"), "inf"), "'c' is not finite"),
        (_with(KLINE, ("k", "l"), "0"), "'l' must be positive"),
        (_with(KLINE, ("k", "v"), "-1"), "'v' must not be negative"),
        (_with(KLINE, ("k", "T"), 1700000098000), "does not end the 1m"),
        (_with(KLINE, ("k", "h"), "36000"), "high below open or close"),
        (_with(KLINE, ("k", "i"), "7m"), "not one of Binance's"),
        (_with(KLINE, ("k", "t"), "1700000040000"), "'t' must be a non-negative integer"),
        (_with(TRADE, ("m",), None), "'m' must be a boolean"),
        (_with(TRADE, ("s",), "btc-usdt"), "is not a pair"),
        (json.dumps({"error": {"code": 2, "msg": "Invalid request"}}), "error frame"),
    ],
)
def test_a_malformed_frame_is_named(text: str, says: str):
    with pytest.raises(MalformedFrame, match=says):
        parse_frame(text)


def test_stream_names():
    assert stream_names(["ETHUSDT", "BTCUSDT"]) == [
        "btcusdt@kline_1m", "btcusdt@trade", "ethusdt@kline_1m", "ethusdt@trade",
    ]  # fmt: skip
