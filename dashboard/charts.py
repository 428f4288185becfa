"""Plotly figures for the pages, built from the frames of :mod:`dashboard.analytics`."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

OVERLAYS = ("Bollinger", "VWAP")
PANELS = ("MACD", "RSI", "ATR")
# Diverging, centred on zero: red down, green up, as traders read returns.
RETURN_SCALE = [[0.0, "#c0392b"], [0.5, "#f7f7f7"], [1.0, "#1e8449"]]


def candlestick(
    bars: pd.DataFrame, token: str, interval: str, overlays: Sequence[str], panels: Sequence[str]
) -> go.Figure:
    """Candles with volume below and one row per selected indicator panel. ``bars`` is on the
    full grid (:func:`analytics.on_grid`): missing slots are NaN, so lines break at outages."""
    rows = 2 + len(panels)
    heights = [0.55, 0.15] + [0.30 / max(len(panels), 1)] * len(panels)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=heights,
        subplot_titles=[f"{token} {interval}", "Volume", *panels],
    )
    x = bars["bar_time"]
    fig.add_trace(
        go.Candlestick(
            x=x, open=bars["open"], high=bars["high"], low=bars["low"], close=bars["close"], name=token
        ),
        row=1,
        col=1,
    )
    line = {"connectgaps": False, "mode": "lines"}
    if "Bollinger" in overlays:
        for column, dash in (("bb_upper", "dot"), ("bb_middle", "solid"), ("bb_lower", "dot")):
            fig.add_trace(
                go.Scatter(x=x, y=bars[column], name=column, line={"width": 1, "dash": dash}, **line),
                row=1,
                col=1,
            )
    if "VWAP" in overlays:
        fig.add_trace(go.Scatter(x=x, y=bars["vwap"], name="VWAP", line={"width": 1.5}, **line), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=bars["volume"], name="volume", marker_color="#7f8c8d"), row=2, col=1)
    for i, panel in enumerate(panels, start=3):
        if panel == "MACD":
            fig.add_trace(
                go.Bar(x=x, y=bars["macd_hist"], name="MACD hist", marker_color="#95a5a6"), row=i, col=1
            )
            fig.add_trace(go.Scatter(x=x, y=bars["macd"], name="MACD", **line), row=i, col=1)
            fig.add_trace(go.Scatter(x=x, y=bars["macd_signal"], name="signal", **line), row=i, col=1)
        elif panel == "RSI":
            fig.add_trace(go.Scatter(x=x, y=bars["rsi"], name="RSI(14)", **line), row=i, col=1)
            for level in (30, 70):
                fig.add_hline(y=level, line_dash="dot", line_color="#aaa", row=i, col=1)
        elif panel == "ATR":
            fig.add_trace(go.Scatter(x=x, y=bars["atr"], name="ATR(14)", **line), row=i, col=1)
    # Outages are shaded, so a missing candle reads as "no data", not as a quiet market; a slot
    # never loaded (a day nobody ran) is grey and says so, not an exchange gap.
    loaded = ~bars["not_loaded"] if "not_loaded" in bars else pd.Series(True, index=bars.index)
    for start, end in _gap_spans(bars.assign(is_gap=bars["is_gap"] & loaded)):
        fig.add_vrect(x0=start, x1=end, fillcolor="#e74c3c", opacity=0.08, line_width=0)
    for start, end in _gap_spans(bars.assign(is_gap=~loaded)):
        fig.add_vrect(
            x0=start, x1=end, fillcolor="#7f8c8d", opacity=0.15, line_width=0,
            annotation_text="not loaded", annotation_position="top left",
        )  # fmt: skip
    fig.update_layout(
        height=420 + 160 * len(panels), xaxis_rangeslider_visible=False, margin={"t": 40, "b": 20}
    )
    fig.update_yaxes(title_text="price (USDT)", row=1, col=1)
    fig.update_yaxes(title_text=f"volume ({token})", row=2, col=1)
    return fig


def _gap_spans(bars: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if bars.empty or not bars["is_gap"].any():
        return []
    step = bars["bar_time"].diff().median() if len(bars) > 1 else pd.Timedelta(hours=1)
    spans: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for time, gap in zip(bars["bar_time"], bars["is_gap"], strict=True):
        if not gap:
            continue
        if spans and spans[-1][1] == time:
            spans[-1] = (spans[-1][0], time + step)
        else:
            spans.append((time, time + step))
    return spans


def returns_heatmap(recent: pd.DataFrame, order: Sequence[str]) -> go.Figure:
    """Tokens (grouped by category) x the last 24 hourly bars, coloured by the 1h return."""
    wide = recent.pivot_table(index="token", columns="bar_time", values="return_1h").astype(float)
    wide = wide.reindex([t for t in order if t in wide.index])
    wide = wide.iloc[:, -24:] * 100.0
    bound = float(wide.abs().quantile(0.95).max()) if wide.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=wide.to_numpy(),
            x=list(wide.columns),
            y=list(wide.index),
            colorscale=RETURN_SCALE,
            zmid=0.0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": "1h %"},
            hovertemplate="%{y} %{x}<br>%{z:.2f}%<extra></extra>",
        )
    )
    fig.update_layout(height=max(300, 18 * len(wide.index)), margin={"t": 20, "b": 20})
    fig.update_yaxes(autorange="reversed")
    return fig


def lines(frame: pd.DataFrame, x: str, y: str, color: str, title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    for name, rows in frame.groupby(color, sort=True):
        fig.add_trace(go.Scatter(x=rows[x], y=rows[y], name=str(name), mode="lines", connectgaps=False))
    fig.update_layout(title=title, yaxis_title=y_title, height=380, margin={"t": 40, "b": 20})
    return fig


def correlation_heatmap(matrix: pd.DataFrame, order: Sequence[str], title: str) -> go.Figure:
    ordered = matrix.reindex(index=list(order), columns=list(order))
    fig = go.Figure(
        go.Heatmap(
            z=ordered.to_numpy(),
            x=list(ordered.columns),
            y=list(ordered.index),
            colorscale="RdBu",
            zmin=-1,
            zmax=1,
            reversescale=True,
            colorbar={"title": "corr"},
            hovertemplate="%{y} / %{x}: %{z:.2f}<extra></extra>",
        )
    )
    side = max(420, 20 * len(order))
    fig.update_layout(title=title, height=side, margin={"t": 40, "b": 20})
    fig.update_yaxes(autorange="reversed")
    return fig


def bars_chart(frame: pd.DataFrame, x: str, y: str, color: str | None, title: str) -> go.Figure:
    fig = go.Figure()
    groups = frame.groupby(color, sort=True) if color else [(y, frame)]
    for name, rows in groups:
        fig.add_trace(go.Bar(x=rows[x], y=rows[y], name=str(name)))
    fig.update_layout(title=title, height=380, margin={"t": 40, "b": 20}, barmode="group")
    return fig
