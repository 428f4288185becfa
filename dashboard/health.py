"""Data health beyond the warehouse: the lake's partitions on disk and Dagster's own record of
materializations and asset-check results, read over the webserver's GraphQL API (``make dev``).

Both are optional: the dashboard also runs where only the warehouse is reachable, and says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pandas as pd

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
LAKE_LAYERS = ("raw", "bronze", "silver")

# Assets, their latest materialization and the latest result of each of their checks.
ASSETS_QUERY = """
query DashboardAssets {
  assetNodes {
    assetKey { path }
    groupName
    assetMaterializations(limit: 1) { timestamp partition runId }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          blocking
          executionForLatestMaterialization {
            runId
            status
            timestamp
            evaluation { severity partition }
          }
        }
      }
    }
  }
}
"""


def dagster_url() -> str:
    """Where this process asks Dagster (in containers: the webserver's service name)."""
    return os.getenv("DAGSTER_URL", DEFAULT_DAGSTER_URL).rstrip("/")


def dagster_public_url(url: str | None = None) -> str:
    """Where the reader's browser opens Dagster's pages: DAGSTER_PUBLIC_URL, else the URL asked."""
    return (os.getenv("DAGSTER_PUBLIC_URL") or url or dagster_url()).rstrip("/")


@dataclass(frozen=True)
class DagsterStatus:
    url: str
    assets: pd.DataFrame  # asset, group, last_materialized (UTC), partition, run_id, link
    checks: pd.DataFrame  # asset, check, blocking, status, severity, partition, when, run_id, link
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


def _utc(timestamp: float | str | None, millis: bool = False) -> datetime | None:
    if timestamp in (None, ""):
        return None
    value = float(timestamp) / (1000.0 if millis else 1.0)
    return datetime.fromtimestamp(value, tz=UTC).replace(tzinfo=None)


def dagster_status(url: str | None = None, timeout: float = 3.0) -> DagsterStatus:
    """Asset and check status from the Dagster webserver; a status with ``error`` when it is down."""
    url = (url or dagster_url()).rstrip("/")
    try:
        response = httpx.post(f"{url}/graphql", json={"query": ASSETS_QUERY}, timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return DagsterStatus(url, pd.DataFrame(), pd.DataFrame(), f"{type(exc).__name__}: {exc}")
    if body.get("errors"):
        return DagsterStatus(url, pd.DataFrame(), pd.DataFrame(), body["errors"][0].get("message", "error"))
    assets, checks = [], []
    public = dagster_public_url(url)
    for node in body["data"]["assetNodes"]:
        name = "/".join(node["assetKey"]["path"])
        link = f"{public}/assets/{quote(name)}"
        latest = (node.get("assetMaterializations") or [None])[0] or {}
        assets.append(
            {
                "asset": name,
                "group": node.get("groupName"),
                "last_materialized": _utc(latest.get("timestamp"), millis=True),
                "partition": latest.get("partition"),
                "run_id": latest.get("runId"),
                "link": link,
            }
        )
        for check in (node.get("assetChecksOrError") or {}).get("checks", []):
            execution = check.get("executionForLatestMaterialization") or {}
            evaluation = execution.get("evaluation") or {}
            checks.append(
                {
                    "asset": name,
                    "check": check["name"],
                    "blocking": check.get("blocking"),
                    "status": execution.get("status", "NOT_RUN"),
                    "severity": evaluation.get("severity"),
                    "partition": evaluation.get("partition"),
                    "when": _utc(execution.get("timestamp")),
                    "run_id": execution.get("runId"),
                    "link": f"{public}/runs/{execution['runId']}" if execution.get("runId") else link,
                }
            )
    return DagsterStatus(url, pd.DataFrame(assets), pd.DataFrame(checks))


FAILED = ("FAILED", "EXECUTION_FAILED")


def failing_checks(checks: pd.DataFrame) -> list[str]:
    """Each failing check by name: ``asset.check`` with its severity and partition when known."""
    if checks.empty:
        return []
    names = []
    for row in checks[checks["status"].isin(FAILED)].itertuples():
        details = [str(v) for v in (row.severity, row.partition) if isinstance(v, str) and v]
        names.append(f"{row.asset}.{row.check}" + (f" ({', '.join(details)})" if details else ""))
    return names


def missing_between(days: list[date]) -> list[date]:
    """The days between the first and the last of ``days`` that are not among them: holes a
    backfill left (days nobody ran), not exchange gaps (those are rows with is_gap)."""
    if not days:
        return []
    present = set(days)
    first, last = min(days), max(days)
    return [
        first + timedelta(days=n)
        for n in range((last - first).days + 1)
        if first + timedelta(days=n) not in present
    ]


def shown_days(days: list[date], most: int = 6) -> str:
    text = [d.isoformat() for d in days]
    return ", ".join(text if len(text) <= most else [*text[:3], "...", *text[-2:]])


def lake_freshness(lake_root: Path, today: date | None = None) -> pd.DataFrame:
    """The newest daily partition of every asset in the lake, how many days old it is, and the
    days missing between its first and last."""
    today = today or datetime.now(UTC).date()
    rows = []
    for layer in LAKE_LAYERS:
        folder = lake_root / layer
        if not folder.is_dir():
            continue
        for asset in sorted(p for p in folder.iterdir() if p.is_dir()):
            days = sorted(p.name[3:] for p in asset.glob("dt=*") if p.is_dir())
            if not days:
                continue
            last = date.fromisoformat(days[-1])
            holes = missing_between([date.fromisoformat(d) for d in days])
            rows.append(
                {
                    "layer": layer,
                    "asset": asset.name,
                    "first_day": date.fromisoformat(days[0]),
                    "last_day": last,
                    "partitions": len(days),
                    "days_behind": (today - last).days,
                    "missing_days": len(holes),
                    "missing": shown_days(holes),
                }
            )
    return pd.DataFrame(rows, columns=FRESHNESS_COLUMNS)


FRESHNESS_COLUMNS = [
    "layer", "asset", "first_day", "last_day", "partitions", "days_behind", "missing_days", "missing",
]  # fmt: skip


def status(days_behind: float | None, missing_days: float | None) -> str:
    """A freshness row in words: not loaded, fresh or stale, and its holes."""
    if days_behind is None or pd.isna(days_behind):
        return "not loaded yet"
    text = "fresh" if days_behind <= 1 else f"stale ({int(days_behind)} days)"
    holes = 0 if missing_days is None or pd.isna(missing_days) else int(missing_days)
    return text + (f", {holes} day(s) missing" if holes else "")


def recorded_failures(path: Path, dagster: str, limit: int = 50) -> pd.DataFrame:
    """The newest failed runs first, from the run-failure sensor's JSON lines
    (``Settings.run_failures_path``): when, job, partition, failed steps with their errors, a link."""
    columns = ["recorded_at", "job", "partition", "failed_steps", "error", "run_id", "link"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        steps = record.get("steps") or []
        rows.append(
            {
                "recorded_at": record.get("recorded_at"),
                "job": record.get("job"),
                "partition": record.get("partition"),
                "failed_steps": ", ".join(str(s.get("step")) for s in steps),
                "error": " | ".join(str(s.get("error")) for s in steps) or record.get("message"),
                "run_id": record.get("run_id"),
                "link": f"{dagster.rstrip('/')}/runs/{record.get('run_id')}",
            }
        )
    return pd.DataFrame(rows[::-1], columns=columns)


STREAM_GAP_COLUMNS = [
    "detected_at", "symbol", "kind", "reason", "first_missing", "last_missing", "missing", "repaired",
    "repaired_by", "error",
]  # fmt: skip


def stream_gaps(lake_root: Path, today: date | None = None, days: int = 2) -> pd.DataFrame:
    """What the live stream lost and how each loss was repaired (lake/stream/gaps), newest first,
    for the last ``days`` UTC days. Kline gaps give minutes (UTC), trade gaps trade ids."""
    from crypto_assets.streaming.sink import read_table

    today = today or datetime.now(UTC).date()
    wanted = [(today - timedelta(days=i)).isoformat() for i in range(days)]
    frame = read_table(lake_root, "gaps", wanted).to_pandas()
    if frame.empty:
        return pd.DataFrame(columns=STREAM_GAP_COLUMNS)
    for column in ("first_missing", "last_missing"):
        minutes = pd.to_datetime(frame[column], unit="ms").dt.strftime("%Y-%m-%d %H:%M")
        frame[column] = frame[column].astype(str).where(frame["kind"] != "klines", minutes)
    return frame.sort_values("detected_at", ascending=False)[STREAM_GAP_COLUMNS].reset_index(drop=True)
