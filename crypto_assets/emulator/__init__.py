"""A local exchange that speaks Binance's spot REST and WebSocket protocol.

It serves deterministic, seeded market data for every pair in the universe, within each pair's
listing dates, so the demo and the tests exercise the real ingestion code over HTTP and WebSocket.
No Dagster, no Spark: ``crypto-analytics emulator`` runs it on its own.
"""
