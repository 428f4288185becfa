"""Deterministic, seeded market data for the emulator, with the stylized facts of real crypto.

Each pair's log price follows a mean-reverting daily walk (so levels stay of the right order for
years), bridged minute by minute inside each day. A minute's bar depends only on (seed, pair,
day) and on per-pair and market paths drawn once from the seed, so any request, from any window,
at any time, sees the same history: REST, the archive files and the stream agree bit for bit.

What makes it look like the real market (figures of the real 2023 Binance year in
shared/data/real, 30 non-stablecoin tokens, hourly; parameters below):

- Volatility clusters: a stochastic-volatility process per token, its log volatility the sum of
  a slow (half-life ~14 days) and a fast (half-life ~8 h) AR(1) component, 60 % of each common
  to the market (VOL_COMPONENTS, MARKET_VOL_SHARE). Real: autocorrelation of |hourly return|
  0.24 at 1 h, 0.11 at 24 h, 0.09 at a week.
- Fat tails: minute shocks are Student-t with 5 degrees of freedom, mixed by the volatility
  process, and the market jumps now and then (JUMP_RATE, JUMP_SD). Real: median excess kurtosis of hourly returns 21.7.
- A market factor: each token loads ``market_loading`` (profiles.py) on common shocks, in the
  daily walk and the minutes. Real: median hourly correlation with BTC 0.61, beta 1.21.
- Intraday and weekday patterns: activity peaks at 15 UTC and bottoms at 03 UTC (real volume
  0.75x-1.41x its mean; |return| 0.83x-1.23x), weekends trade ~15 % less (real: 0.88, 0.82 on
  Saturday and Sunday).
- Volume rises with volatility (elasticity VOLUME_VOL_ELASTICITY). Real: correlation of log
  volume and |return| 0.50.
- Stablecoins sit at their peg with small noise; a de-peg episode (profiles.DEFAULT_DEPEGS:
  USDC's of March 2023) is configurable with EMULATOR_DEPEGS.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from scipy.signal import lfilter

from crypto_assets.emulator.profiles import Depeg, configured_depegs, profile_for
from crypto_assets.universe import Listing, Universe

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES_PER_DAY = 1440
EPOCH = datetime(2017, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)
_ANCHOR_DAYS = 365 * 20  # anchors from 2017 to 2036

HOURS_PER_DAY = 24
# Student-t minute shocks, scaled to unit variance.
T_DEGREES = 5.0
T_SCALE = math.sqrt((T_DEGREES - 2.0) / T_DEGREES)
# E|shock| of that t: activity grows with the size of a minute's move.
MEAN_ABS_SHOCK = (
    T_SCALE * 2 * math.sqrt(T_DEGREES) * math.gamma((T_DEGREES + 1) / 2)
    / (math.sqrt(math.pi) * (T_DEGREES - 1) * math.gamma(T_DEGREES / 2))
)  # fmt: skip
# Market-wide jumps: one minute in ~3 days moves ~40 minute-sigmas (~5 hourly ones): the
# liquidation cascades behind most of crypto's kurtosis.
JUMP_RATE = 1 / (MINUTES_PER_DAY * 3)
JUMP_SD = 40.0
# Log-volatility components, hourly AR(1): (persistence per hour, stationary standard deviation).
VOL_COMPONENTS = ((1 - 1 / (24 * 20), 0.40), (1 - 1 / 12, 0.30))
VOL_VARIANCE = sum(sd**2 for _, sd in VOL_COMPONENTS)
MARKET_VOL_SHARE = 0.6  # share of each component's variance common to every token
VOLUME_VOL_ELASTICITY = 0.7  # volume ~ volatility multiplier ** this
_HOUR_OF_MINUTE = np.arange(MINUTES_PER_DAY) / 60.0
_PEAK_HOUR = 15.0
# Per minute of the day: activity (volume) and volatility around their daily means.
INTRADAY_VOLUME = 1.0 + 0.33 * np.cos(2 * np.pi * (_HOUR_OF_MINUTE - _PEAK_HOUR) / 24)
_intraday_vol = 1.0 + 0.2 * np.cos(2 * np.pi * (_HOUR_OF_MINUTE - _PEAK_HOUR) / 24)
INTRADAY_VOL = _intraday_vol / np.sqrt(np.mean(_intraday_vol**2))
# Monday..Sunday: the real 2023 year's volume profile; volatility ~7-10 % lower at weekends.
WEEKDAY_VOLUME = np.array([1.08, 1.02, 1.07, 1.10, 1.01, 0.88, 0.82])
WEEKDAY_VOLUME /= WEEKDAY_VOLUME.mean()
_weekday_vol = np.array([1.03, 1.03, 1.03, 1.03, 1.03, 0.93, 0.90])
WEEKDAY_VOL = _weekday_vol / np.sqrt(np.mean(_weekday_vol**2))
EPOCH_WEEKDAY = 6  # 2017-01-01 was a Sunday
# A stablecoin's pull back to its peg (per day) during a de-peg and the two days after it.
DEPEG_REVERSION = 0.8

# Binance's kline intervals that divide a day evenly (so each candle lies inside one day).
INTERVAL_MINUTES: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30,
    "1h": 60, "2h": 120, "4h": 240, "6h": 360, "8h": 480, "12h": 720, "1d": 1440,
}  # fmt: skip


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def fixed(values: np.ndarray, decimals: int = 8) -> np.ndarray:
    """Amounts with ``decimals`` decimals as exact int64 units: sums of them are exact, as the
    exchange's decimal arithmetic is (a float sum of 1,440 quote volumes of 1e6 is not)."""
    return np.round(np.asarray(values, dtype=np.float64) * 10.0**decimals).astype(np.int64)


def format_units(units: int, decimals: int = 8) -> str:
    """int64 units of 10**-decimals -> the exchange's decimal string with 8 decimals."""
    whole, fraction = divmod(abs(units), 10**decimals)
    digits = f"{fraction:0{decimals}d}" if decimals else ""
    return f"{'-' if units < 0 else ''}{whole}.{digits.ljust(8, '0')}"


def price_decimals(price: float) -> int:
    """Tick precision giving at least 5 significant digits, as Binance's tick sizes do."""
    return int(min(8, max(2, 4 - math.floor(math.log10(price)))))


def quantity_decimals(price: float) -> int:
    """Lot step precision: cheap tokens trade in whole units, BTC in 1e-5."""
    return int(min(8, max(0, math.floor(math.log10(price)) + 1)))


@dataclass(frozen=True)
class DayBars:
    """1440 one-minute bars of one pair and one UTC day, already rounded to tick and lot size."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray


# Trade ids per minute: more than any pair's trades in a minute (BTC ~1,600 on a quiet minute,
# above 14,000 in a burst: 10,000 once let a busy minute's ids run into the next minute's).
TRADE_IDS_PER_MINUTE = 1_000_000


class Market:
    """The emulated exchange's market: which pairs exist when, and their bars."""

    def __init__(self, universe: Universe, seed: int = 20231) -> None:
        self.universe = universe
        self.seed = seed
        self.listings: dict[str, list[Listing]] = {}
        for token in universe.tokens:
            for listing in token.listings:
                if listing.exchange == "binance":
                    self.listings.setdefault(listing.pair, []).append(listing)
        self._day_bars = lru_cache(maxsize=1024)(self._compute_day_bars)
        self._anchors = lru_cache(maxsize=128)(self._compute_anchors)
        self._vol_paths = lru_cache(maxsize=128)(self._compute_vol_path)
        self._market_shocks = lru_cache(maxsize=4096)(self._compute_market_shocks)
        self.depegs: tuple[Depeg, ...] = configured_depegs()
        # Minutes the 1m stream loses (a data fault on demand): the exchange's own coarser klines
        # still cover them, as when an ingestion misses minutes the exchange did record.
        self.missing_minutes: dict[str, set[int]] = {}
        self.data_version = 0

    def drop_minutes(self, pair: str, start_ms: int, minutes: int) -> None:
        """From now on, the 1m klines (REST and archive) of ``pair`` lack ``minutes`` minutes
        from ``start_ms``; 1h/1d klines are unchanged."""
        first = (start_ms // MINUTE_MS) * MINUTE_MS
        self.missing_minutes.setdefault(pair, set()).update(first + MINUTE_MS * i for i in range(minutes))
        self.data_version += 1

    def restore_minutes(self) -> None:
        self.missing_minutes.clear()
        self.data_version += 1

    def _minute_mask(self, pair: str, day_start_ms: int, now_ms: int, *, minute_stream: bool) -> np.ndarray:
        """Minutes of one day that exist: listed, already open at ``now_ms`` and, for the 1m
        stream, not dropped by a data fault."""
        minutes = day_start_ms + MINUTE_MS * np.arange(MINUTES_PER_DAY, dtype=np.int64)
        mask = self._listed_mask_cached(pair, day_start_ms) & (minutes <= now_ms)
        dropped = self.missing_minutes.get(pair) if minute_stream else None
        if dropped:
            mask &= ~np.isin(minutes, np.fromiter(dropped, dtype=np.int64))
        return mask

    # ------------------------------------------------------------------ lifecycle
    def pairs(self) -> list[str]:
        return sorted(self.listings)

    def base_asset(self, pair: str) -> str:
        return pair.removesuffix(self.universe.quote_asset)

    def is_trading(self, pair: str, at_ms: int) -> bool:
        return any(self._listed_at(lst, at_ms) for lst in self.listings.get(pair, []))

    @staticmethod
    def _listed_at(listing: Listing, at_ms: int) -> bool:
        start = int(listing.start.timestamp() * 1000)
        end = int(listing.end.timestamp() * 1000) if listing.end else None
        return start <= at_ms and (end is None or at_ms < end)

    def _listed_mask(self, pair: str, day_start_ms: int) -> np.ndarray:
        return self._listed(pair, day_start_ms + MINUTE_MS * np.arange(MINUTES_PER_DAY, dtype=np.int64))

    def _listed(self, pair: str, minutes: np.ndarray) -> np.ndarray:
        """Which of ``minutes`` (epoch ms, any shape) fall inside one of the pair's listings."""
        mask = np.zeros(minutes.shape, dtype=bool)
        for listing in self.listings.get(pair, []):
            start = int(listing.start.timestamp() * 1000)
            end = int(listing.end.timestamp() * 1000) if listing.end else np.iinfo(np.int64).max
            mask |= (minutes >= start) & (minutes < end)
        return mask

    # ------------------------------------------------------------------ price model
    def _compute_anchors(self, pair: str) -> np.ndarray:
        """Log price at each UTC midnight since EPOCH: an Ornstein-Uhlenbeck walk around the
        level, its daily shocks partly the market's and scaled by the day's volatility; a
        stablecoin's level moves to its trough during a configured de-peg."""
        profile = profile_for(pair)
        rng = np.random.default_rng(_seed(self.seed, pair, "anchors"))
        market = np.random.default_rng(_seed(self.seed, "market", "anchors")).standard_normal(_ANCHOR_DAYS)
        loading = profile.market_loading
        own = rng.standard_normal(_ANCHOR_DAYS)
        day_vol = np.sqrt(np.mean(self._vol_paths(pair).reshape(_ANCHOR_DAYS, HOURS_PER_DAY) ** 2, axis=1))
        shocks = (loading * market + math.sqrt(1 - loading**2) * own) * profile.annual_vol / math.sqrt(365.0)
        shocks *= day_vol
        mu = np.full(_ANCHOR_DAYS, math.log(profile.price))
        theta = np.full(_ANCHOR_DAYS, profile.mean_reversion)
        for depeg in (d for d in self.depegs if d.pair == pair):
            first = (datetime(depeg.start.year, depeg.start.month, depeg.start.day, tzinfo=UTC) - EPOCH).days
            if 0 <= first < _ANCHOR_DAYS:
                mu[first : first + depeg.days] = math.log(profile.price * depeg.trough)
                theta[first : first + depeg.days + 2] = DEPEG_REVERSION
        anchors = np.empty(_ANCHOR_DAYS + 1)
        anchors[0] = mu[0] + shocks[0] / math.sqrt(max(2 * theta[0], 1e-6)) * 0.5
        for day in range(_ANCHOR_DAYS):
            anchors[day + 1] = anchors[day] + theta[day] * (mu[day] - anchors[day]) + shocks[day]
        return anchors

    def _compute_vol_path(self, pair: str) -> np.ndarray:
        """The pair's volatility multiplier per hour since EPOCH (mean square 1): exp of the sum
        of AR(1) log-volatility components, each part market, part the pair's own; 1 for a
        pair without stochastic volatility (a stablecoin)."""
        hours = _ANCHOR_DAYS * HOURS_PER_DAY
        if not profile_for(pair).stochastic_vol:
            return np.ones(hours)
        market = self._log_vol(_seed(self.seed, "market", "volatility"), hours)
        own = self._log_vol(_seed(self.seed, pair, "volatility"), hours)
        log_vol = math.sqrt(MARKET_VOL_SHARE) * market + math.sqrt(1 - MARKET_VOL_SHARE) * own
        # E[exp(2 h)] = exp(2 Var h) for a centred normal h: this keeps the profile's annual vol.
        return np.exp(log_vol - VOL_VARIANCE)

    @staticmethod
    def _log_vol(seed: int, hours: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        total = np.zeros(hours)
        for persistence, sd in VOL_COMPONENTS:
            start, noise = rng.standard_normal(), rng.standard_normal(hours)
            innovation = sd * math.sqrt(1 - persistence**2)
            # y[t] = persistence * y[t-1] + innovation * noise[t], from its stationary law.
            total += lfilter([innovation], [1.0, -persistence], noise, zi=[persistence * sd * start])[0]
        return total

    def _compute_market_shocks(self, day_index: int) -> np.ndarray:
        """The market's minute shocks of one day, shared by every pair: Student-t, plus a rare
        jump (a liquidation cascade), scaled to unit variance."""
        rng = np.random.default_rng(_seed(self.seed, "market", "minutes", day_index))
        shocks = rng.standard_t(T_DEGREES, MINUTES_PER_DAY) * T_SCALE
        jumps = rng.random(MINUTES_PER_DAY) < JUMP_RATE
        shocks += np.where(jumps, rng.standard_normal(MINUTES_PER_DAY) * JUMP_SD, 0.0)
        return shocks / math.sqrt(1 + JUMP_RATE * JUMP_SD**2)

    def _minute_sigma(self, pair: str, day_indices: np.ndarray) -> np.ndarray:
        """Standard deviation of each minute's log return, ``(days, 1440)``: the profile's, times
        the hour's volatility multiplier, the intraday and the weekday pattern."""
        profile = profile_for(pair)
        base = profile.annual_vol / math.sqrt(365.0 * MINUTES_PER_DAY)
        hours = day_indices[:, None] * HOURS_PER_DAY + np.arange(HOURS_PER_DAY)
        hourly = np.repeat(self._vol_paths(pair)[hours], 60, axis=1)
        weekday = WEEKDAY_VOL[(day_indices + EPOCH_WEEKDAY) % 7][:, None]
        if not profile.stochastic_vol:
            return np.full((len(day_indices), MINUTES_PER_DAY), base)
        return base * hourly * INTRADAY_VOL * weekday

    def _price_path(self, pair: str, day_indices: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, ...]:
        """Log closes ``(days, 1440)`` from each day's own shocks ``own`` (the first draw of the
        day's generator), the market's shocks and the minute sigmas; also the combined unit
        shocks and the sigmas (activity follows them). One function for ``days_bars`` and
        ``closes_at``: they must agree bit for bit."""
        loading = profile_for(pair).market_loading
        market = (
            np.stack([self._market_shocks(int(d)) for d in day_indices.tolist()]) if len(day_indices) else own
        )
        shocks = loading * market + math.sqrt(1 - loading**2) * own
        sigma = self._minute_sigma(pair, day_indices)
        anchors = self._anchors(pair)
        t = np.arange(1, MINUTES_PER_DAY + 1) / MINUTES_PER_DAY
        log_close = _bridge(
            shocks * sigma, anchors[day_indices][:, None], anchors[day_indices + 1][:, None], t
        )
        return log_close, shocks, sigma

    def day_bars(self, pair: str, day_index: int) -> DayBars:
        return self._day_bars(pair, day_index)

    def _compute_day_bars(self, pair: str, day_index: int) -> DayBars:
        days = self.days_bars(pair, np.array([day_index]))
        return DayBars(*(getattr(days, f.name)[0] for f in fields(DayBars)))

    def days_bars(self, pair: str, day_indices: np.ndarray) -> DayBars:
        """The minutes of several days at once, one row per day (shape ``(days, 1440)``): each
        day's draws come from its own seed, so row ``i`` equals ``day_bars(pair, day_indices[i])``
        bit for bit; the arithmetic runs once over all the days (the 1h/1d klines of years of
        history derive ~20 k pair-days of minutes)."""
        day_indices = np.asarray(day_indices, dtype=np.int64)
        if len(day_indices) and not (0 <= day_indices.min() and day_indices.max() < _ANCHOR_DAYS):
            raise ValueError("day outside the emulated range (2017-2036)")
        profile = profile_for(pair)
        anchors = self._anchors(pair)
        n = MINUTES_PER_DAY
        k = len(day_indices)
        own, wicks = np.empty((k, n)), np.empty((2, k, n))
        noise, trade_size, taker_noise = np.empty((k, n)), np.empty((k, n)), np.empty((k, n))
        for row, day_index in enumerate(day_indices.tolist()):
            rng = np.random.default_rng(_seed(self.seed, pair, day_index))
            own[row] = rng.standard_t(T_DEGREES, n) * T_SCALE
            wicks[:, row] = rng.standard_normal((2, n))
            noise[row] = rng.lognormal(0.0, 0.45, n)
            trade_size[row] = rng.lognormal(0.0, 0.3, n)
            taker_noise[row] = rng.normal(0, 0.05, n)
        log_close, shocks, sigma = self._price_path(pair, day_indices, own)
        close = np.exp(log_close)
        start = anchors[day_indices][:, None]
        # A minute opens at the previous minute's close (the same exp of the same log price).
        open_ = np.concatenate((np.exp(start), close[:, :-1]), axis=1)
        wicks = np.abs(wicks) * sigma * 0.6
        high = np.maximum(open_, close) * np.exp(wicks[0])
        low = np.minimum(open_, close) * np.exp(-wicks[1])

        decimals = price_decimals(profile.price)
        open_, high, low, close = (np.round(a, decimals) for a in (open_, high, low, close))

        # Activity: the intraday and weekday patterns, more trading in volatile hours and on
        # bigger moves, and noise; divided by its expectation, so a day trades the profile's
        # value on average (and more in a storm, less on a quiet Sunday).
        base_sigma = profile.annual_vol / math.sqrt(365.0 * n)
        regime = (
            (sigma / base_sigma / INTRADAY_VOL) ** VOLUME_VOL_ELASTICITY if profile.stochastic_vol else 1.0
        )
        weekday = WEEKDAY_VOLUME[(day_indices + EPOCH_WEEKDAY) % 7][:, None]
        # A jump's minute trades a few times more, not a hundred (the size of its move is capped).
        move = np.minimum(np.abs(shocks), 4.0)
        expected = math.exp(0.45**2 / 2) * (0.7 + 0.3 * MEAN_ABS_SHOCK)
        expected *= math.exp(-VOL_VARIANCE / 2) if profile.stochastic_vol else 1.0
        activity = INTRADAY_VOLUME * weekday * regime * noise * (0.7 + 0.3 * move) / expected
        typical = (open_ + high + low + close) / 4.0
        qty_decimals = quantity_decimals(profile.price)
        volume = np.round(profile.daily_quote_volume / n * activity / typical, qty_decimals)
        quote_volume = np.round(volume * typical, 8)
        trades = np.maximum(1, np.round(quote_volume / (350.0 * trade_size))).astype(np.int64)
        trades[volume == 0] = 0
        # Each minute's trade ids are its own (see TRADE_IDS_PER_MINUTE).
        np.minimum(trades, TRADE_IDS_PER_MINUTE - 1, out=trades)
        taker = np.clip(0.5 + 0.15 * np.tanh(shocks) + taker_noise, 0.05, 0.95)
        taker_base = np.round(volume * taker, qty_decimals)
        taker_quote = np.round(taker_base * typical, 8)
        return DayBars(open_, high, low, close, volume, quote_volume, trades, taker_base, taker_quote)

    def closes_at(self, pair: str, at_ms: np.ndarray) -> np.ndarray:
        """The close of the minute holding each instant of ``at_ms``: ``day_bars(...).close`` bit
        for bit, from each day's price steps alone (its first draw), without the wicks, volumes
        and trades: CoinGecko's points over years ask for a minute of each of thousands of days."""
        at_ms = np.asarray(at_ms, dtype=np.int64)
        day_index = (at_ms - EPOCH_MS) // DAY_MS
        minute = np.clip((at_ms - EPOCH_MS) % DAY_MS // MINUTE_MS, 0, MINUTES_PER_DAY - 1)
        days, row_of = np.unique(day_index, return_inverse=True)
        if len(days) and not (0 <= days.min() and days.max() < _ANCHOR_DAYS):
            raise ValueError("day outside the emulated range (2017-2036)")
        profile = profile_for(pair)
        own = np.empty((len(days), MINUTES_PER_DAY))
        for row, day in enumerate(days.tolist()):
            rng = np.random.default_rng(_seed(self.seed, pair, day))
            own[row] = rng.standard_t(T_DEGREES, MINUTES_PER_DAY) * T_SCALE
        log_close = self._price_path(pair, days.astype(np.int64), own)[0]
        close = np.round(np.exp(log_close), price_decimals(profile.price))
        return close[row_of.reshape(-1), minute]

    # ------------------------------------------------------------------ klines
    def klines(
        self,
        pair: str,
        interval: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        now_ms: int,
    ) -> list[list]:
        """Rows exactly as Binance's /api/v3/klines returns them (12 fields, numbers as strings).

        Candles open at or after ``start_ms`` (ascending, at most ``limit``); with only
        ``end_ms``, the last ``limit`` candles opening at or before it. Minutes outside the
        pair's listings or after ``now_ms`` do not exist. The candle containing ``now_ms`` is
        served as it stands: still open, as on the real exchange.
        """
        step_min = INTERVAL_MINUTES[interval]
        step_ms = step_min * MINUTE_MS
        last_open = (now_ms // step_ms) * step_ms
        if end_ms is not None:
            last_open = min(last_open, (end_ms // step_ms) * step_ms)
        first_listing_ms = min(
            (int(lst.start.timestamp() * 1000) for lst in self.listings.get(pair, [])),
            default=last_open + step_ms,
        )
        first_open = max(EPOCH_MS, (first_listing_ms // step_ms) * step_ms)
        if start_ms is not None:
            first_open = max(first_open, -(-start_ms // step_ms) * step_ms)

        rows: list[list] = []
        if step_min == 1 and start_ms is not None:
            return self._minute_klines(pair, first_open, last_open, limit, now_ms)
        if start_ms is not None:
            return self._interval_klines(pair, step_min, first_open, last_open, limit, now_ms)
        if start_ms is None:
            # Walk backwards from the end to find the last `limit` candles.
            opens = range(last_open, first_open - 1, -step_ms)
        else:
            opens = range(first_open, last_open + 1, step_ms)
        for open_ms in opens:
            row = self._candle(pair, open_ms, step_min, now_ms)
            if row is not None:
                rows.append(row)
                if len(rows) >= limit:
                    break
        if start_ms is None:
            rows.reverse()
        return rows

    def _minute_klines(
        self, pair: str, first_open: int, last_open: int, limit: int, now_ms: int
    ) -> list[list]:
        """The 1m fast path (the backfill hot path): whole days at a time, no per-candle masks."""
        rows: list[list] = []
        open_ms = first_open
        while open_ms <= last_open and len(rows) < limit:
            day_index, offset_ms = divmod(open_ms - EPOCH_MS, DAY_MS)
            day_start = EPOCH_MS + day_index * DAY_MS
            first = offset_ms // MINUTE_MS
            last = min(
                MINUTES_PER_DAY - 1, (last_open - day_start) // MINUTE_MS, (now_ms - day_start) // MINUTE_MS
            )
            mask = self._minute_mask(pair, day_start, now_ms, minute_stream=True)
            wanted = [int(i) for i in np.flatnonzero(mask[first : last + 1]) + first][: limit - len(rows)]
            if wanted:
                bars = self.day_bars(pair, int(day_index))
                columns = (
                    bars.open, bars.high, bars.low, bars.close, bars.volume, bars.quote_volume,
                    bars.trades, bars.taker_base, bars.taker_quote,
                )  # fmt: skip
                o, h, lo, c, v, q, n, tb, tq = (col[wanted].tolist() for col in columns)
                for j, i in enumerate(wanted):
                    t = day_start + i * MINUTE_MS
                    rows.append(
                        [
                            t, f"{o[j]:.8f}", f"{h[j]:.8f}", f"{lo[j]:.8f}", f"{c[j]:.8f}", f"{v[j]:.8f}",
                            t + MINUTE_MS - 1, f"{q[j]:.8f}", int(n[j]), f"{tb[j]:.8f}", f"{tq[j]:.8f}", "0",
                        ]
                    )  # fmt: skip
            open_ms = day_start + DAY_MS
        return rows

    def _interval_klines(
        self, pair: str, step_min: int, first_open: int, last_open: int, limit: int, now_ms: int
    ) -> list[list]:
        """Coarser klines (5m ... 1d) aggregated from the days' minutes in one numpy pass over
        all the days of the page: the same values as :meth:`_candle`, so 1h/1d klines and archive
        files always equal their 1m bars resampled (the backfill path for years of history)."""
        if first_open > last_open:
            return []
        per_day = MINUTES_PER_DAY // step_min
        first_day = (first_open - EPOCH_MS) // DAY_MS
        last_day = (last_open - EPOCH_MS) // DAY_MS
        # Enough days for `limit` candles (days without minutes, before a listing, are skipped).
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        rows: list[list] = []
        batch = max(1, -(-limit // per_day) + 1)
        for offset in range(0, len(days), batch):
            chunk = days[offset : offset + batch]
            rows += self._interval_rows(
                pair, step_min, chunk, first_open, last_open, limit - len(rows), now_ms
            )
            if len(rows) >= limit:
                break
        return rows

    def _interval_rows(
        self,
        pair: str,
        step_min: int,
        days: np.ndarray,
        first_open: int,
        last_open: int,
        limit: int,
        now_ms: int,
    ) -> list[list]:
        step_ms = step_min * MINUTE_MS
        per_day = MINUTES_PER_DAY // step_min
        day_starts = EPOCH_MS + days * DAY_MS
        minutes = day_starts[:, None] + MINUTE_MS * np.arange(MINUTES_PER_DAY, dtype=np.int64)
        mask = ((minutes <= now_ms) & self._listed(pair, minutes)).reshape(len(days), per_day, step_min)
        opens = (day_starts[:, None] + step_ms * np.arange(per_day, dtype=np.int64)).ravel()
        live = mask.any(axis=2).ravel() & (opens >= first_open) & (opens <= last_open)
        chosen = np.flatnonzero(live)[:limit]
        if not len(chosen):
            return []
        # Only the days holding chosen candles are generated.
        needed = np.unique(chosen // per_day)
        bars = self.days_bars(pair, days[needed])
        position = np.searchsorted(needed, chosen // per_day)
        slot = chosen % per_day
        m = mask[needed].reshape(-1, step_min)[position * per_day + slot]

        def shaped(values: np.ndarray) -> np.ndarray:
            return values.reshape(-1, step_min)[position * per_day + slot]

        decimals = price_decimals(profile_for(pair).price)
        qty = quantity_decimals(profile_for(pair).price)
        index = np.arange(len(chosen))
        first_minute = m.argmax(axis=1)
        last_minute = step_min - 1 - m[:, ::-1].argmax(axis=1)
        o, h, lo, c = (shaped(a) for a in (bars.open, bars.high, bars.low, bars.close))
        opened = o[index, first_minute].tolist()
        high = np.round(np.where(m, h, -np.inf).max(axis=1), decimals).tolist()
        low = np.round(np.where(m, lo, np.inf).min(axis=1), decimals).tolist()
        closed = c[index, last_minute].tolist()
        trades = np.where(m, shaped(bars.trades), 0).sum(axis=1).tolist()

        def total(values: np.ndarray, places: int) -> list[int]:
            return np.where(m, shaped(fixed(values, places)), 0).sum(axis=1).tolist()

        volume, quote = total(bars.volume, qty), total(bars.quote_volume, 8)
        taker_base, taker_quote = total(bars.taker_base, qty), total(bars.taker_quote, 8)
        out: list[list] = []
        for j, t in enumerate(opens[chosen].tolist()):
            out.append(
                [
                    t, f"{opened[j]:.8f}", f"{high[j]:.8f}", f"{low[j]:.8f}", f"{closed[j]:.8f}",
                    format_units(volume[j], qty), t + step_ms - 1, format_units(quote[j]), int(trades[j]),
                    format_units(taker_base[j], qty), format_units(taker_quote[j]), "0",
                ]
            )  # fmt: skip
        return out

    def _candle(self, pair: str, open_ms: int, step_min: int, now_ms: int) -> list | None:
        day_index, offset_ms = divmod(open_ms - EPOCH_MS, DAY_MS)
        day_start = EPOCH_MS + day_index * DAY_MS
        first = offset_ms // MINUTE_MS
        mask = self._minute_mask(pair, day_start, now_ms, minute_stream=step_min == 1)[
            first : first + step_min
        ]
        if not mask.any():
            return None
        bars = self.day_bars(pair, int(day_index))
        sl = slice(first, first + step_min)
        idx = np.flatnonzero(mask)
        decimals = price_decimals(profile_for(pair).price)
        qty = quantity_decimals(profile_for(pair).price)
        return [
            int(open_ms),
            f"{bars.open[sl][idx[0]]:.8f}",
            f"{round(bars.high[sl][idx].max(), decimals):.8f}",
            f"{round(bars.low[sl][idx].min(), decimals):.8f}",
            f"{bars.close[sl][idx[-1]]:.8f}",
            format_units(int(fixed(bars.volume[sl][idx], qty).sum()), qty),
            int(open_ms + step_min * MINUTE_MS - 1),
            format_units(int(fixed(bars.quote_volume[sl][idx]).sum())),
            int(bars.trades[sl][idx].sum()),
            format_units(int(fixed(bars.taker_base[sl][idx], qty).sum()), qty),
            format_units(int(fixed(bars.taker_quote[sl][idx]).sum())),
            "0",
        ]

    @lru_cache(maxsize=4096)  # noqa: B019 - one Market per process; bounded
    def _listed_mask_cached(self, pair: str, day_start_ms: int) -> np.ndarray:
        return self._listed_mask(pair, day_start_ms)

    # ------------------------------------------------------------------ live state (WebSocket)
    def live_candle(self, pair: str, now_ms: int, interval: str = "1m") -> dict | None:
        """The candle containing ``now_ms`` as the kline stream shows it: built up so far."""
        step_ms = INTERVAL_MINUTES[interval] * MINUTE_MS
        open_ms = (now_ms // step_ms) * step_ms
        row = self._candle(pair, open_ms, INTERVAL_MINUTES[interval], now_ms)
        if row is None:
            return None
        # Inside the current minute, reveal the close gradually along the path open -> close.
        frac = min(1.0, (now_ms - (now_ms // MINUTE_MS) * MINUTE_MS + 1) / MINUTE_MS)
        return {"row": row, "fraction": frac, "closed": False}

    def trade_tape(self, pair: str, minute_ms: int, now_ms: int) -> list[dict]:
        """Every trade of ``pair`` in the minute opening at ``minute_ms``: as many as its 1m
        kline counts, at deterministic times inside the minute, the first at the open price and
        the last at the close, the others inside [low, high]. Trade ids are
        ``minute index * TRADE_IDS_PER_MINUTE + k``: the kline's first and last trade ids (``f``, ``L``) bound
        them, so a client can tell which trades of a closed minute it missed. The stream, the
        REST trade endpoints and the tests' ground truth are this tape."""
        row = self._candle(pair, minute_ms, 1, now_ms)
        if row is None:
            return []
        return [dict(t) for t in self._tape(pair, minute_ms, tuple(row[1:5]), int(row[8]))]

    @lru_cache(maxsize=4096)  # noqa: B019 - one Market per process; bounded
    def _tape(self, pair: str, minute_ms: int, ohlc: tuple[str, ...], count: int) -> tuple[tuple, ...]:
        rng = np.random.default_rng(_seed(self.seed, pair, "tape", minute_ms))
        o, h, low, c = (float(x) for x in ohlc)
        decimals = price_decimals(profile_for(pair).price)
        qty_dec = quantity_decimals(profile_for(pair).price)
        times = np.sort(rng.integers(0, MINUTE_MS, size=count)) + minute_ms
        prices = np.round(low + (h - low) * rng.random(count), decimals)
        if count:
            prices[0], prices[-1] = o, c
        quantities = np.maximum(
            np.round(350.0 * rng.lognormal(0.0, 0.8, count) / np.maximum(prices, 1e-12), qty_dec),
            10.0**-qty_dec,
        )
        makers = rng.random(count) < 0.5
        first_id = (minute_ms // MINUTE_MS) * TRADE_IDS_PER_MINUTE
        return tuple(
            tuple({
                "id": int(first_id + k), "time": int(times[k]), "price": f"{prices[k]:.8f}",
                "quantity": f"{quantities[k]:.8f}", "buyer_is_maker": bool(makers[k]),
            }.items())
            for k in range(count)
        )  # fmt: skip

    def trades_from(self, pair: str, from_id: int, limit: int, now_ms: int) -> list[dict]:
        """Up to ``limit`` trades from id ``from_id`` on, up to ``now_ms`` (historicalTrades)."""
        out: list[dict] = []
        minute_ms = (from_id // TRADE_IDS_PER_MINUTE) * MINUTE_MS
        while len(out) < limit and minute_ms <= now_ms:
            out += [
                t
                for t in self.trade_tape(pair, minute_ms, now_ms)
                if t["id"] >= from_id and t["time"] <= now_ms
            ]
            minute_ms += MINUTE_MS
        return out[:limit]

    def trade_at(self, pair: str, now_ms: int, sequence: int) -> dict | None:
        """A deterministic trade inside the current minute's range."""
        minute_ms = (now_ms // MINUTE_MS) * MINUTE_MS
        row = self._candle(pair, minute_ms, 1, now_ms)
        if row is None:
            return None
        rng = np.random.default_rng(_seed(self.seed, pair, "trade", minute_ms, sequence))
        low, high = float(row[3]), float(row[2])
        decimals = price_decimals(profile_for(pair).price)
        qty_dec = quantity_decimals(profile_for(pair).price)
        price = round(low + (high - low) * float(rng.random()), decimals)
        quantity = round(350.0 * float(rng.lognormal(0.0, 0.8)) / max(price, 1e-12), qty_dec)
        return {
            "price": f"{price:.8f}",
            "quantity": f"{max(quantity, 10.0**-qty_dec):.8f}",
            "buyer_is_maker": bool(rng.random() < 0.5),
            "id": int((minute_ms // MINUTE_MS) * 1000 + sequence),
        }


def _bridge(steps: np.ndarray, start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Log closes of days' minutes (rows) from their scaled steps: a Brownian bridge from the
    day's anchor to the next, so days join without a jump."""
    walk = np.cumsum(steps, axis=1)
    log_close = start + (end - start) * t
    log_close += walk - t * walk[:, -1:]
    return log_close


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def day_rows(market: Market, pair: str, interval: str, day_start_ms: int, now_ms: int) -> list[list]:
    """Every candle of one UTC day (as REST rows), paging past the 1000-row limit."""
    rows: list[list] = []
    cursor = day_start_ms
    end = day_start_ms + DAY_MS - 1
    while cursor <= end:
        page = market.klines(pair, interval, start_ms=cursor, end_ms=end, limit=1000, now_ms=now_ms)
        if not page:
            break
        rows += page
        cursor = page[-1][0] + INTERVAL_MINUTES[interval] * MINUTE_MS
    return rows
