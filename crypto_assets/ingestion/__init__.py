"""Clients for the exchanges' APIs (httpx / websockets). No Dagster, no Spark."""
