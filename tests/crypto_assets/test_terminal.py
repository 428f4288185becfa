"""The CLI's terminal: one line per message, a failure named by what our code raised, no stack."""

import pytest
from dagster import Definitions, asset, define_asset_job

from crypto_assets.cli import failure_cause
from crypto_assets.definitions import defs
from crypto_assets.ingestion.binance_archive import ChecksumMismatch
from crypto_assets.terminal import terminal_logger


@asset
def corrupted_file() -> None:
    try:
        raise ChecksumMismatch("/data/x.zip: SHA-256 abc does not match the published abd")
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(f"{exc} (after 6 attempts)") from exc


@asset
def noisy(context) -> int:
    context.log.warning("a warning\n\nwith a second paragraph")
    return 1


def _run(selection: list):
    job = define_asset_job("job", selection=selection)
    definitions = Definitions(
        assets=[corrupted_file, noisy], jobs=[job], loggers={"terminal": terminal_logger}
    )
    config = {"loggers": {"terminal": {"config": {"log_level": "WARNING"}}}}
    return definitions.resolve_job_def("job").execute_in_process(run_config=config, raise_on_error=False)


def test_a_failure_is_named_by_the_error_our_code_raised_not_dagsters_wrapper(capsys: pytest.CaptureFixture):
    result = _run([corrupted_file])
    assert not result.success
    assert failure_cause(result.all_events) == (
        "corrupted_file: ChecksumMismatch: /data/x.zip: SHA-256 abc does not match the published abd (after 6 attempts)"
    )
    err = capsys.readouterr().err
    assert (
        "Stack Trace" not in err and "Traceback" not in err and "ChecksumMismatch" not in err
    )  # the CLI says it


def test_warnings_are_one_line_each(capsys: pytest.CaptureFixture):
    assert _run([noisy]).success
    assert capsys.readouterr().err.splitlines() == ["  ! noisy: a warning with a second paragraph"]


def test_the_code_location_offers_the_terminal_logger_beside_dagsters_console():
    loggers = defs.resolve_job_def("market_data_job").loggers
    assert set(loggers) == {"console", "terminal"}
