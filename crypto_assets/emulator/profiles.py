"""Per-token market profiles for the emulator: price level, volatility, traded value, how much
of a token's move is the market's, and the stablecoins' de-peg episodes.

Orders of magnitude taken from public market data (2024-2025 ranges); they make the emulated
market look like the real one (PEPE at 1e-5 with volumes of 1e11, BTC near 1e5), not predict it.
``market_loading`` is the correlation of a token's returns with the common market factor: BTC
0.9 and altcoins 0.55-0.8 give pairwise hourly correlations of ~0.4-0.7 and betas to BTC of ~1-1.5,
the ranges of 2021-2024 Binance data (e.g. the real 2023 year in shared/data/real: median
hourly correlation with BTC 0.67).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Profile:
    price: float  # long-run price level in USDT
    annual_vol: float  # annualised volatility of log returns
    daily_quote_volume: float  # USDT traded per day
    mean_reversion: float = 0.01  # per-day pull of the log price towards its level
    market_loading: float = 0.65  # correlation of its returns with the market factor
    stochastic_vol: bool = True  # volatility that clusters (False: a stablecoin's steady noise)


_STABLE = {"annual_vol": 0.01, "mean_reversion": 0.5, "market_loading": 0.0, "stochastic_vol": False}

PROFILES: dict[str, Profile] = {
    # USD legs of the stablecoins, for the emulated CoinGecko (no USDTUSDT pair exists).
    "USDTUSD": Profile(1.0, daily_quote_volume=5e10, **_STABLE),
    "DAIUSD": Profile(1.0, daily_quote_volume=2e8, **_STABLE),
    "USDCUSDT": Profile(1.0, daily_quote_volume=6e8, **_STABLE),
    "BUSDUSDT": Profile(1.0, daily_quote_volume=3e8, **_STABLE),
    "TUSDUSDT": Profile(1.0, daily_quote_volume=5e7, **_STABLE),
    "XRPUSDT": Profile(2.2, 0.80, 4e8),
    "UNIUSDT": Profile(8.0, 0.90, 4e7),
    "AAVEUSDT": Profile(220.0, 0.90, 6e7),
    "COMPUSDT": Profile(50.0, 0.90, 1.5e7),
    "SUSHIUSDT": Profile(0.8, 1.00, 1.5e7),
    "MKRUSDT": Profile(1500.0, 0.80, 1.5e7),
    "CAKEUSDT": Profile(2.2, 0.90, 3e7),
    "CRVUSDT": Profile(0.6, 1.00, 4e7),
    "BTCUSDT": Profile(95000.0, 0.50, 1.5e9, market_loading=0.9),
    "ETHUSDT": Profile(3200.0, 0.65, 8e8, market_loading=0.8),
    "SOLUSDT": Profile(170.0, 0.80, 4e8),
    "AVAXUSDT": Profile(28.0, 0.90, 6e7),
    "ADAUSDT": Profile(0.65, 0.85, 8e7),
    "DOTUSDT": Profile(5.5, 0.85, 4e7),
    "DOGEUSDT": Profile(0.22, 1.00, 3e8),
    "SHIBUSDT": Profile(0.000015, 1.10, 5e7),
    "FLOKIUSDT": Profile(0.00011, 1.30, 3e7),
    "PEPEUSDT": Profile(0.000011, 1.30, 2e8),
    "CKBUSDT": Profile(0.008, 1.10, 1e7),
    "SANDUSDT": Profile(0.30, 1.00, 2e7),
    "MANAUSDT": Profile(0.32, 1.00, 1.5e7),
    "AXSUSDT": Profile(5.0, 1.00, 1.5e7),
    "ENJUSDT": Profile(0.15, 1.00, 8e6),
    "THETAUSDT": Profile(1.1, 1.00, 8e6),
    "LINKUSDT": Profile(15.0, 0.85, 8e7),
    "GRTUSDT": Profile(0.12, 1.00, 1.5e7),
    "RUNEUSDT": Profile(1.5, 1.10, 2e7),
    "AGIXUSDT": Profile(0.45, 1.20, 3e7),
    "OCEANUSDT": Profile(0.55, 1.20, 2e7),
    "FETUSDT": Profile(0.9, 1.20, 6e7),
    "NEARUSDT": Profile(3.0, 1.00, 5e7),
    "TAOUSDT": Profile(400.0, 1.10, 5e7),
}

DEFAULT_PROFILE = Profile(1.0, 1.0, 1e7)


def profile_for(pair: str) -> Profile:
    return PROFILES.get(pair, DEFAULT_PROFILE)


@dataclass(frozen=True)
class Depeg:
    """A stablecoin's de-peg: from ``start`` the price slides to ``trough`` (e.g. 0.88) and is
    pulled back to the peg after ``days``."""

    pair: str
    start: date
    days: int
    trough: float

    def covers(self, day: date) -> bool:
        return self.start <= day < self.start + timedelta(days=self.days)


# USDC's real de-peg (SVB, 2023-03-10 to 03-13, a low of ~0.88 on 03-11), by default. Set
# EMULATOR_DEPEGS to "PAIR:YYYY-MM-DD:<days>d:<trough>[,...]" for others, or "none".
DEFAULT_DEPEGS = "USDCUSDT:2023-03-10:3d:0.88"


def parse_depegs(text: str) -> tuple[Depeg, ...]:
    """``PAIR:YYYY-MM-DD:<days>d:<trough>`` entries, comma-separated ("none": no episode)."""
    if text.strip().lower() in ("", "none"):
        return ()
    out = []
    for entry in text.split(","):
        try:
            pair, start, days, trough = entry.strip().split(":")
            depeg = Depeg(pair.upper(), date.fromisoformat(start), int(days.removesuffix("d")), float(trough))
        except ValueError:
            raise ValueError(
                f"EMULATOR_DEPEGS entry {entry!r}: expected PAIR:YYYY-MM-DD:<days>d:<trough>,"
                " e.g. USDCUSDT:2023-03-10:3d:0.88"
            ) from None
        if depeg.days < 1 or not 0 < depeg.trough < 2:
            raise ValueError(f"EMULATOR_DEPEGS entry {entry!r}: at least 1 day and a trough in (0, 2)")
        out.append(depeg)
    return tuple(out)


def configured_depegs() -> tuple[Depeg, ...]:
    return parse_depegs(os.environ.get("EMULATOR_DEPEGS", DEFAULT_DEPEGS))
