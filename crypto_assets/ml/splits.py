"""Walk-forward folds over time, purged and embargoed, so overlapping forward targets never leak.

A row at time t carries a target over (t, t + horizon]. A training row whose target window
reaches into a test fold has seen the test period: training therefore stops ``purge`` (at least
the horizon) before each test fold, and the ``embargo`` after each earlier test fold is left out
too (rows just after a test fold share its autocorrelated moves).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: train on ``train`` times, test on ``[test_start, test_end)``."""

    number: int
    train_end: pd.Timestamp  # exclusive: test_start - purge
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    embargoed: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]

    def train_mask(self, times: pd.Series) -> pd.Series:
        mask = times < self.train_end
        for start, end in self.embargoed:
            mask &= ~((times >= start) & (times < end))
        return mask

    def test_mask(self, times: pd.Series) -> pd.Series:
        return (times >= self.test_start) & (times < self.test_end)

    def describe(self, train: pd.Series, test: pd.Series) -> dict[str, int | str]:
        """The fold as a model card lists it, with its training and test row counts (masks)."""
        return {
            "fold": self.number,
            "train_rows": int(train.sum()),
            "train_end": str(self.train_end),
            "test_start": str(self.test_start),
            "test_end": str(self.test_end),
            "test_rows": int(test.sum()),
        }


NO_EMBARGO = pd.Timedelta(0)


class FoldError(ValueError):
    """The data cannot hold the requested folds (too little history for the windows)."""


def duration_text(delta: pd.Timedelta) -> str:
    """A duration as a person writes it: "23 h", "1 day", "30 days", "2 days 6 h", "90 min"."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins else []
    return " ".join(parts) or "0 min"


def walk_forward_folds(
    times: pd.Series,
    *,
    folds: int,
    min_train: pd.Timedelta,
    horizon: pd.Timedelta,
    purge: pd.Timedelta | None = None,
    embargo: pd.Timedelta = NO_EMBARGO,
) -> list[Fold]:
    """``folds`` consecutive, equal test periods after ``min_train`` of history, each trained on
    everything before it minus the purge gap and the embargoes. ``purge`` defaults to the horizon
    and may not be shorter (overlapping targets would leak)."""
    purge = horizon if purge is None else purge
    if purge < horizon:
        raise FoldError(
            f"purge {duration_text(purge)} is shorter than the target horizon {duration_text(horizon)}: targets would leak"
        )
    if folds < 1:
        raise FoldError("at least one fold is needed")
    first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    test_start = first + min_train + purge
    span = last - test_start
    if span <= pd.Timedelta(0):
        raise FoldError(
            f"{duration_text(last - first)} of data is too little: training needs {duration_text(min_train)} plus a"
            f" {duration_text(purge)} purge before testing"
        )
    size = span / folds
    out: list[Fold] = []
    for number in range(folds):
        start = test_start + size * number
        end = last + pd.Timedelta(microseconds=1) if number == folds - 1 else test_start + size * (number + 1)
        embargoed = tuple((f.test_end, f.test_end + embargo) for f in out if embargo > NO_EMBARGO)
        out.append(Fold(number, start - purge, start, end, embargoed))
    return out
