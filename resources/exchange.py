"""Market-data sources: Binance (REST + bulk archive) and CoinGecko, or the local emulator."""

from dagster import ConfigurableResource
from pydantic import Field

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient
from crypto_assets.ingestion.coingecko import CoinGeckoClient


class BinanceResource(ConfigurableResource):
    """Binance spot REST, WebSocket and bulk-archive base URLs (default: the local emulator)."""

    rest_url: str = Field(description="REST base URL, e.g. https://api.binance.com")
    ws_url: str = Field(description="WebSocket base URL, e.g. wss://stream.binance.com:9443")
    archive_url: str = Field(description="Bulk archive base URL, e.g. https://data.binance.vision")
    klines_source: str = Field(
        default="archive", description="1m klines from the archive (REST fallback) or rest; 1h/1d from REST"
    )
    weight_per_minute: int = Field(default=6000, description="REQUEST_WEIGHT budget per minute")
    timeout_seconds: float = 10.0
    max_retries: int = 5

    def client(self) -> BinanceClient:
        return BinanceClient(
            self.rest_url,
            weight_per_minute=self.weight_per_minute,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )

    def archive_client(self) -> BinanceArchiveClient:
        return BinanceArchiveClient(
            self.archive_url, timeout=self.timeout_seconds * 3, max_retries=self.max_retries
        )


class CoinGeckoResource(ConfigurableResource):
    """CoinGecko API v3 (default: the emulator's). The key, if any, comes from COINGECKO_API_KEY."""

    url: str
    api_key: str | None = None
    calls_per_minute: int = 30
    timeout_seconds: float = 15.0
    max_retries: int = 5

    def client(self) -> CoinGeckoClient:
        return CoinGeckoClient(
            self.url,
            api_key=self.api_key,
            calls_per_minute=self.calls_per_minute,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )
