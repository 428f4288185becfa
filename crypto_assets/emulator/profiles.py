"""Per-token market profiles for the emulator: price level, volatility and traded value.

Orders of magnitude taken from public market data (2024-2025 ranges); they make the emulated
market look like the real one (PEPE at 1e-5 with volumes of 1e11, BTC near 1e5), not predict it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    price: float  # long-run price level in USDT
    annual_vol: float  # annualised volatility of log returns
    daily_quote_volume: float  # USDT traded per day
    mean_reversion: float = 0.01  # per-day pull of the log price towards its level


_STABLE = {"annual_vol": 0.01, "mean_reversion": 0.5}

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
    "BTCUSDT": Profile(95000.0, 0.50, 1.5e9),
    "ETHUSDT": Profile(3200.0, 0.65, 8e8),
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
