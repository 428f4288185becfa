"""The promotion gate's Dagster side, shared by both models (direction, volatility): a blocking
check on the candidate, its verdict, and the result of a training that could not run."""

from dagster import AssetCheckResult, AssetCheckSeverity, MaterializeResult, MetadataValue


def not_trained(check_name: str, reason: str, rows_label: str, rows: int) -> MaterializeResult:
    """Too little history is not an error: the gate check warns, the baseline keeps serving."""
    return MaterializeResult(
        metadata={"status": MetadataValue.text(reason), rows_label: MetadataValue.int(rows)},
        check_results=[
            AssetCheckResult(
                check_name=check_name,
                passed=False,
                severity=AssetCheckSeverity.WARN,
                metadata={"reason": MetadataValue.text(reason)},
            )
        ],
    )


def verdict(
    check_name: str, passed: bool, candidate: str, serving: dict | None, reasons: list[str]
) -> AssetCheckResult:
    """The gate's verdict on a candidate: an ERROR when refused, so the blocking check stops the
    serving model's step."""
    return AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "candidate": MetadataValue.text(candidate),
            "serving": MetadataValue.text(serving["version"] if serving else "none (baseline)"),
            "reasons": MetadataValue.json(reasons),
        },
    )
