"""Pure pandas for the pages: snapshots, index levels, gaps on the bar grid, clustering.

No Streamlit and no warehouse here, so every number a page shows can be tested on a small frame.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

INTERVAL_FREQ = {"1h": "h", "1d": "D"}


PRICE_DIGITS = 5


def price_text(value: float) -> str:
    """A price with 5 significant digits at any magnitude (PEPE 0.00001089, SHIB 0.00000808, BTC
    101,234.50: at least cents, thousands separated); empty when missing. A number format of one
    precision would show micro-priced tokens as 0.000008 or BTC as 1.0123e+5."""
    if value is None or value != value:
        return ""
    magnitude = math.floor(math.log10(abs(value))) if value else 0
    decimals = max(2, PRICE_DIGITS - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    if decimals > 2:
        whole, fraction = text.split(".")
        text = f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
    return text


def snapshot(recent: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """One row per token at its latest observed hourly bar: price, 1h/24h/7d change, 24h volume,
    market cap, and the change of volume and cap against the 24h before."""
    columns = [
        "token", "category", "bar_time", "close", "change_1h", "change_24h", "change_7d",
        "volume_24h_usd", "volume_change", "market_cap_usd", "market_cap_change",
    ]  # fmt: skip
    observed = recent[~recent["is_gap"].astype(bool)] if len(recent) else recent
    if observed.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for token, bars in observed.sort_values("bar_time").groupby("token", sort=True):
        last = bars.iloc[-1]
        cutoff = last["bar_time"] - pd.Timedelta(hours=24)
        mine = recent[recent["token"] == token]
        last_day = mine[(mine["bar_time"] > cutoff) & (mine["bar_time"] <= last["bar_time"])]
        day_before = mine[(mine["bar_time"] <= cutoff) & (mine["bar_time"] > cutoff - pd.Timedelta(hours=24))]
        volume = last_day["quote_volume"].sum(min_count=1)
        volume_before = day_before["quote_volume"].sum(min_count=1)
        caps_before = day_before["market_cap_usd"].dropna()
        cap_before = caps_before.iloc[-1] if len(caps_before) else np.nan
        rows.append(
            {
                "token": token,
                "category": last["category"],
                "bar_time": last["bar_time"],
                "close": last["close"],
                "change_1h": last["return_1h"],
                "change_24h": last["return_24h"],
                "volume_24h_usd": volume,
                "volume_change": _ratio(volume, volume_before),
                "market_cap_usd": last["market_cap_usd"],
                "market_cap_change": _ratio(last["market_cap_usd"], cap_before),
            }
        )
    frame = pd.DataFrame(rows)
    seven = daily.set_index("token")["return_7d"] if len(daily) else pd.Series(dtype=float)
    frame["change_7d"] = frame["token"].map(seven).astype(float)
    return frame[columns].sort_values(["category", "market_cap_usd"], ascending=[True, False])


def _ratio(now: float, before: float) -> float:
    if pd.isna(now) or pd.isna(before) or before == 0:
        return np.nan
    return float(now) / float(before) - 1.0


def movers(snap: pd.DataFrame, column: str, n: int = 5) -> pd.DataFrame:
    """The ``n`` largest moves of ``column`` either way, biggest absolute first."""
    ranked = snap.dropna(subset=[column])
    ranked = ranked.reindex(ranked[column].abs().sort_values(ascending=False).index)
    return ranked.head(n)[["token", "category", column]]


def biggest_changes(snap: pd.DataFrame, measures: dict[str, str], n: int = 5) -> pd.DataFrame:
    """One table: for each measure, the ``n`` largest moves either way (token and percent), side by side."""
    columns: dict[str, list[object]] = {"rank": list(range(1, n + 1))}
    for column, label in measures.items():
        top = movers(snap, column, n)
        tokens = top["token"].tolist() + [None] * (n - len(top))
        values = (top[column].astype(float) * 100).round(2).tolist() + [None] * (n - len(top))
        columns[label] = tokens
        columns[f"{label} %"] = values
    return pd.DataFrame(columns)


def on_grid(bars: pd.DataFrame, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Every slot of the interval's grid between ``start`` and ``end``, missing ones as NaN rows:
    Plotly then draws an outage as a break in each line instead of a straight line across it.
    ``is_gap``: no bar (either kind); ``not_loaded``: no row at all in the warehouse."""
    grid = pd.date_range(start, end, freq=INTERVAL_FREQ[interval], inclusive="left", name="bar_time")
    frame = bars.copy()
    frame["bar_time"] = pd.to_datetime(frame["bar_time"])
    gap = frame["is_gap"].astype("boolean").fillna(False).astype(bool) if len(frame) else frame["is_gap"]
    numeric = [c for c in frame.columns if c not in ("bar_time", "is_gap")]
    frame[numeric] = frame[numeric].astype(float)
    frame.loc[gap, numeric] = np.nan
    frame = frame.drop_duplicates("bar_time").set_index("bar_time")
    loaded = grid.isin(frame.index)
    frame = frame.reindex(grid)
    frame["is_gap"] = frame["close"].isna()
    # A slot the warehouse has no row for was never loaded (a day nobody ran); a gap row is the
    # exchange's outage. Both break the lines; the chart tells them apart.
    frame["not_loaded"] = ~loaded
    return frame.reset_index()


def index_levels(index: pd.DataFrame, base: float = 100.0) -> pd.DataFrame:
    """Index levels rebuilt from the 1-bar returns: level = base x cumulative product of (1 + r).
    A bar with no return (no constituent traded) carries the level forward."""
    out = []
    for category, rows in index.sort_values("bar_time").groupby("category", sort=True):
        rows = rows.copy()
        for kind in ("equal_weighted", "cap_weighted"):
            returns = rows[f"{kind}_return"].astype(float).fillna(0.0)
            rows[f"{kind}_level"] = base * (1.0 + returns).cumprod()
        rows["category"] = category
        out.append(rows)
    if not out:
        return index.assign(equal_weighted_level=[], cap_weighted_level=[])
    return pd.concat(out, ignore_index=True)


def relative_performance(levels: pd.DataFrame, kind: str = "equal_weighted") -> pd.DataFrame:
    """Each category's level over the mean of all categories' levels, in percent above/below."""
    wide = levels.pivot_table(index="bar_time", columns="category", values=f"{kind}_level")
    market = wide.mean(axis=1)
    relative = wide.div(market, axis=0).sub(1.0).mul(100.0)
    return relative.reset_index().melt(id_vars="bar_time", var_name="category", value_name="relative_pct")


def correlation_matrix(pairs: pd.DataFrame) -> pd.DataFrame:
    """The stored pairs (both orders and the diagonal) as a square matrix."""
    if pairs.empty:
        return pd.DataFrame()
    return pairs.pivot_table(index="token_a", columns="token_b", values="correlation").astype(float)


def correlation_from_returns(returns: pd.DataFrame, min_fraction: float = 0.5) -> pd.DataFrame:
    """Pearson correlations of hourly log returns; a pair needs ``min_fraction`` of the hours."""
    if returns.empty:
        return pd.DataFrame()
    wide = returns.pivot_table(index="bar_time", columns="token", values="log_return").astype(float)
    return wide.corr(min_periods=max(2, int(len(wide) * min_fraction)))


def cluster_order(matrix: pd.DataFrame) -> list[str]:
    """Tokens ordered by average-linkage clustering on 1 - correlation, so blocks of co-moving
    tokens sit together in the heat map. Tokens with no correlation at all go last."""
    if matrix.shape[0] < 3:
        return list(matrix.index)
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    known = matrix.index[matrix.notna().sum(axis=1) > 1]
    sub = matrix.loc[known, known].fillna(0.0)
    distance = (1.0 - sub.to_numpy()).clip(0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    distance = (distance + distance.T) / 2.0
    order = [known[i] for i in leaves_list(linkage(squareform(distance, checks=False), "average"))]
    return order + [t for t in matrix.index if t not in set(order)]


def latest_performance(perf: pd.DataFrame) -> pd.DataFrame:
    """Per scope and predictor: rows with a known outcome and the row-weighted accuracy, Brier, IC."""
    if perf.empty:
        return perf
    known = perf[perf["outcomes"] > 0]

    def weighted(group: pd.DataFrame) -> pd.Series:
        weights = group["outcomes"].astype(float)
        out = {"outcomes": int(weights.sum()), "days": int(group["dt"].nunique())}
        for metric in ("accuracy", "brier", "ic"):
            values = group[metric].astype(float)
            mask = values.notna()
            out[metric] = float(np.average(values[mask], weights=weights[mask])) if mask.any() else np.nan
        return pd.Series(out)

    rows = [
        {"scope": scope, "predictor": predictor, **weighted(group).to_dict()}
        for (scope, predictor), group in known.groupby(["scope", "predictor"], sort=True)
    ]
    return pd.DataFrame(rows, columns=["scope", "predictor", "outcomes", "days", "accuracy", "brier", "ic"])
