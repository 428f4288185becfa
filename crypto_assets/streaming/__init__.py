"""Live market data: Binance WebSocket streams into the lake (``crypto-analytics stream``)."""
