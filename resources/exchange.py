"""The exchange endpoints: Binance itself, or the local emulator that speaks its protocol."""

from dagster import ConfigurableResource
from pydantic import Field

from crypto_assets.ingestion.binance import BinanceClient


class BinanceResource(ConfigurableResource):
    """Binance spot REST and WebSocket base URLs (default: the local emulator)."""

    rest_url: str = Field(description="REST base URL, e.g. https://api.binance.com")
    ws_url: str = Field(description="WebSocket base URL, e.g. wss://stream.binance.com:9443")
    timeout_seconds: float = 10.0
    max_retries: int = 5

    def client(self) -> BinanceClient:
        return BinanceClient(self.rest_url, timeout=self.timeout_seconds, max_retries=self.max_retries)
