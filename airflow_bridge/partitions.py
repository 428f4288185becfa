"""The first daily partition of the Dagster jobs, which the DAGs start from.

The same setting and default as ``crypto_assets.partitions`` (``PARTITIONS_START``, else Binance's
first day; a test keeps the two equal), read here without importing the project: the bridge runs
in Airflow's own virtualenv.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

BINANCE_FIRST_DAY = "2017-08-17"


def first_partition() -> datetime:
    """Midnight UTC of the first partition: the start of the first data interval a DAG runs."""
    day = os.environ.get("PARTITIONS_START", "").strip() or BINANCE_FIRST_DAY
    return datetime.fromisoformat(day).replace(tzinfo=UTC)
