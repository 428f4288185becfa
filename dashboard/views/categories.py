"""Categories: equal- and cap-weighted index levels rebuilt from the index returns, each
category's performance relative to the average category, and the dispersion inside each."""

import streamlit as st

from dashboard import analytics, charts, data, ui

VIEWS = ("Index level", "Relative", "Dispersion")

filters = ui.current_filters()
st.title("Categories")
with ui.friendly_errors(), st.spinner("Loading the category indices…"):
    index = ui.load(data.category_index(filters.interval, filters.start, filters.end))
    dispersion = ui.load(
        data.category_dispersion(filters.interval, filters.start, filters.end, filters.tokens)
    )
if index.empty:
    st.info(f"No {filters.interval} category index between {filters.start} and {filters.end}.")
    st.stop()

levels = analytics.index_levels(index)
left, right = st.columns(2)
weighting = left.radio(
    "Weighting", ["equal_weighted", "cap_weighted"], horizontal=True, key="category_weighting",
    format_func=lambda k: k.replace("_", " "),
)  # fmt: skip
# One chart at a time: the three views share the same axes and legend.
view = right.radio("View", list(VIEWS), horizontal=True, key="category_view")
if view == "Index level":
    st.caption("Levels start at 100 on the first bar of the range and compound the index's 1-bar returns.")
    figure = charts.lines(levels, "bar_time", f"{weighting}_level", "category", "Category index", "level")
elif view == "Relative":
    relative = analytics.relative_performance(levels, weighting)
    figure = charts.lines(
        relative, "bar_time", "relative_pct", "category", "Relative to the average category", "%"
    )
else:
    figure = charts.lines(
        dispersion,
        "bar_time",
        "dispersion",
        "category",
        "Dispersion: stdev of 1-bar returns inside the category",
        "stdev",
    )
st.plotly_chart(figure, width="stretch", key="category-chart")
last = levels.sort_values("bar_time").groupby("category").tail(1)
summary = last[["category", "equal_weighted_level", "cap_weighted_level", "constituents"]].copy()
summary["equal_weighted_change_pct"] = (summary["equal_weighted_level"] - 100.0).round(2)
summary["cap_weighted_change_pct"] = (summary["cap_weighted_level"] - 100.0).round(2)
ui.table(summary, f"categories-{filters.interval}-{filters.start}-{filters.end}")
