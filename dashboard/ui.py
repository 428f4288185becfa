"""What every page shares: the sidebar's filters, cached queries, friendly errors, tables with a
CSV download."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import data, health

# Bounded caches: at most this many results, each at most five minutes old (the pipeline loads
# hourly at the fastest, and a reload after `make run` should not wait long).
CACHE_TTL_SECONDS = 300
CACHE_MAX_ENTRIES = 256
DEFAULT_DAYS = 7
# The live marker: shown while the live table has a minute of the last hour; "Live" while the
# newest bar is younger than the slice's 2-minute target plus a minute, "Stale" after.
LIVE_TTL_SECONDS = 5
LIVE_WINDOW = timedelta(hours=1)
LIVE_STALE_SECONDS = 180
INTERVALS = ("1h", "1d")


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES, show_spinner=False)
def _cached(query: data.Query, source: str) -> pd.DataFrame:
    # ``source`` keys the cache by warehouse, so two configurations never share results.
    return query.run(data.backend())


def load(query: data.Query) -> pd.DataFrame:
    """Run a catalogue query through the cache (errors are never cached)."""
    return _cached(query, data.backend().describe()).copy()


@st.cache_data(ttl=LIVE_TTL_SECONDS, max_entries=16, show_spinner=False)
def _cached_live(query: data.Query, source: str) -> pd.DataFrame:
    return query.run(data.backend())


def load_live(query: data.Query) -> pd.DataFrame:
    """A query of the live table: cached a few seconds only (a minute closes every 60 s)."""
    return _cached_live(query, data.backend().describe()).copy()


def live_age(now: datetime | None = None) -> tuple[float, int] | None:
    """(seconds since the newest live minute closed, tokens) when the live table has a minute
    of the last hour; None otherwise (no table, or the stream stopped long ago)."""
    now = now or datetime.now(UTC)
    try:
        status = load_live(data.live_status((now - LIVE_WINDOW).replace(tzinfo=None)))
    except data.DashboardDataError:
        return None
    newest = status["newest_close"].iloc[0] if not status.empty else None
    if newest is None or pd.isna(newest):
        return None
    return (now - pd.Timestamp(newest).tz_localize(UTC)).total_seconds(), int(status["tokens"].iloc[0])


def age_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def live_marker() -> None:
    """In the sidebar: "Live" and the age of the newest bar while the live table is being fed."""
    live = live_age()
    if live is None:
        return
    seconds, tokens = live
    fresh = seconds <= LIVE_STALE_SECONDS
    st.sidebar.badge(
        f"{'Live' if fresh else 'Stale'}: newest bar {age_text(seconds)} old, {tokens} tokens",
        icon=":material/sensors:" if fresh else ":material/sensors_off:",
        color="red" if fresh else "gray",
    )


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def dagster_status(url: str) -> health.DagsterStatus:
    """Dagster's view, refreshed at most every 30 s (the UI itself is one click away)."""
    return health.dagster_status(url)


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices, the same on every page."""

    tokens: tuple[str, ...]  # empty: every token
    start: date
    end: date
    interval: str
    first_day: date
    last_day: date
    all_tokens: tuple[str, ...]
    categories: dict[str, str]  # token -> category
    no_match: str = ""  # what was searched for when no token matches it (pages then show nothing)

    @property
    def shown_tokens(self) -> list[str]:
        return list(self.tokens or self.all_tokens)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show a data problem as a message a user can act on, never as a traceback."""
    try:
        yield
    except data.TableMissing as exc:
        st.warning(str(exc), icon=":material/table_view:")
        st.stop()
    except data.WarehouseUnavailable as exc:
        st.error(str(exc), icon=":material/power_off:")
        st.stop()
    except data.DashboardDataError as exc:
        st.error(str(exc))
        st.stop()


def sidebar() -> Filters | None:
    """The filters, in the sidebar of the entry script (so they keep their values across pages).
    None, with a message in the page, when the warehouse has nothing to filter yet."""
    st.sidebar.caption(f"Warehouse: {data.backend().describe()}")
    note = data.exchange_note()
    if note:
        st.sidebar.caption(f":material/science: {note}")
    try:
        with st.spinner("Reading the warehouse…"):
            bounds = load(data.data_bounds())
            tokens = load(data.token_list())
    except data.DashboardDataError as exc:
        st.session_state["data_problem"] = str(exc)
        return None
    if bounds.empty or pd.isna(bounds["last_day"].iloc[0]) or tokens.empty:
        st.session_state["data_problem"] = (
            "The warehouse holds no gold rows yet. Run `make run` (the last two days on the embedded "
            "defaults), then reload this page."
        )
        return None
    st.session_state.pop("data_problem", None)
    first_day, last_day = _as_date(bounds["first_day"].iloc[0]), _as_date(bounds["last_day"].iloc[0])
    categories = dict(zip(tokens["token"], tokens["category"], strict=True))
    all_tokens = tuple(sorted(categories))

    st.sidebar.radio("Interval", INTERVALS, key="interval", horizontal=True)
    default_start = max(first_day, last_day - timedelta(days=DEFAULT_DAYS - 1))
    picked = st.sidebar.date_input(
        "Dates (UTC)",
        value=(default_start, last_day),
        min_value=first_day,
        max_value=last_day,
        key="dates",
    )
    start, end = _date_range(picked, default_start, last_day)
    chosen_categories = st.sidebar.multiselect(
        "Categories", sorted(set(categories.values())), key="categories", placeholder="All categories"
    )
    # Free text only narrows the list of choices, in Python: it never reaches a query.
    search = st.sidebar.text_input("Find a token", key="token_search", placeholder="e.g. BTC")
    pattern = re.escape(search.strip().upper())
    options = [
        t
        for t in all_tokens
        if (not chosen_categories or categories[t] in chosen_categories) and re.search(pattern, t)
    ]
    kept = [t for t in st.session_state.get("tokens", []) if t in options]
    if kept != st.session_state.get("tokens", []):
        st.session_state["tokens"] = kept
    chosen = st.sidebar.multiselect("Tokens", options, key="tokens", placeholder="All tokens")
    if chosen:
        selected = tuple(chosen)
    elif chosen_categories or search.strip():
        selected = tuple(options)
    else:
        selected = ()
    # An empty selection means every token: a search that matches nothing must not become that.
    narrowed = [f"“{search.strip()}”"] if search.strip() else []
    narrowed += [f"in {', '.join(chosen_categories)}"] if chosen_categories else []
    no_match = " ".join(narrowed) if not options and narrowed else ""
    return Filters(
        tokens=selected,
        start=start,
        end=end,
        interval=st.session_state.get("interval", "1h"),
        first_day=first_day,
        last_day=last_day,
        all_tokens=all_tokens,
        categories=categories,
        no_match=no_match,
    )


def _as_date(value: object) -> date:
    return pd.Timestamp(value).date()


def _date_range(picked: object, default_start: date, last_day: date) -> tuple[date, date]:
    # While a user is picking, the widget holds one date: use it as both ends.
    if isinstance(picked, tuple | list):
        days = [d for d in picked if d is not None]
        if len(days) == 2:
            return min(days), max(days)
        if len(days) == 1:
            return days[0], days[0]
        return default_start, last_day
    if isinstance(picked, date):
        return picked, picked
    return default_start, last_day


def current_filters() -> Filters | None:
    """For a page: the filters, or stop with the reason there are none (no data, or no token
    matching the sidebar's search)."""
    filters = st.session_state.get("filters")
    if filters is None:
        problem = st.session_state.get("data_problem", "No data yet.")
        if "not reachable" in problem:
            st.error(problem, icon=":material/power_off:")
        else:
            st.info(problem, icon=":material/table_view:")
        st.stop()
    if filters.no_match:
        st.info(
            f"No token matches {filters.no_match}. Clear the search (or the categories) to see every token.",
            icon=":material/search_off:",
        )
        st.stop()
    return filters


def table(
    frame: pd.DataFrame,
    name: str,
    *,
    caption: str | None = None,
    column_config: dict | None = None,
    all_rows: bool = False,
) -> None:
    """A table with a CSV download of exactly what is shown (``all_rows``: tall enough for every row)."""
    height: int | str = 35 * (len(frame) + 1) + 3 if all_rows else "auto"
    st.dataframe(frame, hide_index=True, width="stretch", column_config=column_config, height=height)
    st.download_button(
        f"Download {name}.csv",
        frame.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"download-{name}",
    )
    if caption:
        st.caption(caption)


def pct(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Fractions as percentages for display (the CSV keeps the same numbers as shown)."""
    out = frame.copy()
    for column in columns:
        out[column] = (out[column].astype(float) * 100.0).round(2)
    return out
