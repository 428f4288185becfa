"""Run the emulator: ``crypto-analytics emulator`` (foreground, until Ctrl-C or SIGTERM)."""

from __future__ import annotations

import uvicorn

from crypto_assets.emulator.app import EmulatorConfig, create_app
from crypto_assets.emulator.market import Market
from crypto_assets.universe import load_universe


def serve(host: str = "127.0.0.1", port: int = 8765, config: EmulatorConfig | None = None) -> None:
    config = config or EmulatorConfig()
    app = create_app(Market(load_universe(), seed=config.seed), config)
    # Binance pings every 20 s and drops connections that do not answer: so do we.
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_ping_interval=20, ws_ping_timeout=60)
