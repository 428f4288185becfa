"""Run the emulator: ``crypto-analytics emulator`` (foreground, until Ctrl-C or SIGTERM)."""

from __future__ import annotations

import uvicorn

from crypto_assets.emulator.app import EmulatorConfig, create_app
from crypto_assets.emulator.market import Market
from crypto_assets.universe import load_universe


def serve(host: str = "127.0.0.1", port: int = 8765, seed: int = 20231, weight_limit: int = 6000) -> None:
    market = Market(load_universe(), seed=seed)
    app = create_app(market, EmulatorConfig(seed=seed, weight_limit=weight_limit))
    # Binance pings every 20 s and drops connections that do not answer: so do we.
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_ping_interval=20, ws_ping_timeout=60)
