"""Data health: how fresh every layer is, Dagster's last materializations and check results
(when `make dev` serves the UI), gaps and unavailable tokens, stablecoin peg alerts."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from crypto_assets.pipeline_config import load_pipeline_config
from crypto_assets.universe import load_universe
from dashboard import data, health, ui
from resources.settings import Settings

filters = ui.current_filters()
settings = Settings.from_env()
st.title("Data health")
today = datetime.now(UTC).date()

st.subheader("Freshness")
rows = []
with ui.friendly_errors(), st.spinner("Reading the warehouse tables…"):
    for table in data.WAREHOUSE_TABLES:
        try:
            fresh = ui.load(data.table_freshness(table))
        except data.TableMissing:
            rows.append({"layer": "warehouse", "asset": table})
            continue
        last = fresh["last_day"].iloc[0]
        last_day = pd.Timestamp(last).date() if pd.notna(last) else None
        holes = health.missing_between(
            [pd.Timestamp(d).date() for d in ui.load(data.table_days(table))["day"]]
        )
        rows.append(
            {
                "layer": "warehouse",
                "asset": table,
                "first_day": pd.Timestamp(fresh["first_day"].iloc[0]).date() if last_day else None,
                "last_day": last_day,
                "rows": int(fresh["row_count"].iloc[0]),
                "days_behind": (today - last_day).days if last_day else None,
                "missing_days": len(holes),
                "missing": health.shown_days(holes),
            }
        )
lake = health.lake_freshness(settings.lake_root, today)
if lake.empty:
    st.caption("The lake is not on this machine (or empty): only the warehouse's freshness is shown.")
freshness = pd.concat([lake, pd.DataFrame(rows)], ignore_index=True)
freshness["status"] = [
    health.status(behind, holes)
    for behind, holes in zip(freshness["days_behind"], freshness["missing_days"], strict=True)
]
ui.table(
    freshness,
    "freshness",
    caption="Fresh: the newest day is yesterday or today (UTC). Missing days: days between a table's"
    " first and last that it has no rows for (never run), not exchange gaps (those are rows marked is_gap).",
)

st.subheader("Dagster: last materializations and checks")
status = ui.dagster_status(health.dagster_url())
if not status.reachable:
    st.info(
        f"The Dagster UI is not running at {status.url}: start it with `make dev` to see the last "
        "materializations and asset-check results here (set DAGSTER_URL if it runs elsewhere)."
    )
else:
    st.markdown(f"From [{status.url}]({status.url}).")
    failing = health.failing_checks(status.checks)
    cols = st.columns(3)
    cols[0].metric("Assets", len(status.assets))
    cols[1].metric("Checks", len(status.checks))
    cols[2].metric("Failing checks", len(failing))
    if failing:
        st.warning("Failing: " + ", ".join(failing), icon=":material/rule:")
    link = {"link": st.column_config.LinkColumn("link", display_text="open in Dagster")}
    ui.table(status.assets, "dagster-assets", column_config=link)
    if len(status.checks):
        ui.table(status.checks, "asset-checks", column_config=link)

st.subheader("Failed runs")
failures = health.recorded_failures(settings.run_failures_path, health.dagster_public_url())
if failures.empty:
    st.success("No failed run recorded (the run_failure_recorder sensor of `make dev` records them).")
else:
    st.warning(f"{len(failures)} failed run(s) recorded, newest first.")
    ui.table(
        failures,
        "failed-runs",
        column_config={"link": st.column_config.LinkColumn("link", display_text="open run")},
    )

st.subheader("Live stream gaps")
stream_gaps = health.stream_gaps(settings.lake_root, today)
if stream_gaps.empty:
    st.caption(
        "No gap recorded by `crypto-analytics stream` today or yesterday (or it did not run on this"
        " machine's lake)."
    )
else:
    unrepaired = int(stream_gaps["error"].notna().sum())
    (st.warning if unrepaired else st.success)(
        f"{len(stream_gaps)} gap(s) met by the stream today and yesterday; {unrepaired} not repaired."
    )
    ui.table(
        stream_gaps,
        "stream-gaps",
        caption="Each loss of the live stream (a dropped connection, a stall, skipped trade ids, a"
        " restart) and how it was repaired from REST. Kline gaps are minutes (UTC); trade gaps are"
        " trade ids.",
    )

st.subheader("Gaps and unavailable tokens")
with ui.friendly_errors(), st.spinner("Counting gaps…"):
    gaps = ui.load(data.gaps(filters.start, filters.end, filters.tokens))
gaps["gap_pct"] = (gaps["gap_bars"].astype(float) / gaps["bars"].astype(float) * 100).round(2)
ui.table(
    gaps, f"gaps-{filters.start}-{filters.end}", caption="Gap bars: hours the exchange delivered no data."
)
universe = load_universe()
start = datetime.combine(filters.start, datetime.min.time(), UTC)
end = datetime.combine(filters.end + timedelta(days=1), datetime.min.time(), UTC)
reasons = universe.unavailable(start, end)
considered = set(filters.tokens) if filters.tokens else set(universe.symbols)
missing = considered - set(gaps["token"]) - set(reasons)
reasons.update({t: "listed, but no bars in the warehouse for these dates" for t in missing})
reasons = {t: r for t, r in reasons.items() if t in considered}
unavailable = pd.DataFrame(
    [{"token": t, "category": universe.token(t).category, "reason": r} for t, r in sorted(reasons.items())],
    columns=["token", "category", "reason"],
)
ui.table(unavailable, "unavailable-tokens")

st.subheader("Stablecoin peg alerts")
threshold = load_pipeline_config().peg_threshold
with ui.friendly_errors():
    breaches = ui.load(data.peg_breaches(filters.start, filters.end, threshold))
if breaches.empty:
    st.success(
        f"No stablecoin closed more than {threshold:.0%} from $1 between {filters.start} and {filters.end}."
    )
else:
    st.warning(f"{len(breaches)} hourly closes more than {threshold:.0%} from $1.")
    ui.table(breaches, f"peg-alerts-{filters.start}-{filters.end}")
