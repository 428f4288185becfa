"""The first daily partition is a setting (PARTITIONS_START), checked before anything loads."""

import os
import subprocess
import sys

import pytest

from crypto_assets.partitions import BINANCE_FIRST_DAY, first_day


def test_the_default_is_binances_first_day_and_a_bad_start_is_named():
    assert first_day("") == BINANCE_FIRST_DAY == "2017-08-17"
    assert first_day("2024-01-01") == "2024-01-01"
    for bad, message in (
        ("2024-13-01", "expected a date"),
        ("2016-01-01", "between"),
        ("2999-01-01", "between"),
    ):
        with pytest.raises(ValueError, match=message):
            first_day(bad)


def test_the_code_location_starts_its_partitions_there():
    script = (
        "from crypto_assets.definitions import defs;"
        "print(defs.resolve_job_def('market_data_job').partitions_def.get_first_partition_key())"
    )
    env = {**os.environ, "PARTITIONS_START": "2024-01-01"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "2024-01-01"
