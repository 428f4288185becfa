"""The direction model's training time on a year of 30 tokens' hours (258 k rows x 14 features,
the size of the real import that took ~28 minutes): the walk-forward evaluation (4 folds, both
models, the metrics beside 3 baselines, permutation importance) and the final fit, then the
long-short spread metric as it was (a qcut per timestamp) beside its vectorised form on the same
out-of-fold rows, in one run.

    .venv/bin/python bench/ml_training_time.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _qcut_loop(frame: pd.DataFrame, prediction: str, target: str, time_column: str) -> float:
    """long_short_spread before: one pd.qcut per timestamp."""
    spreads = []
    for _, group in frame[[time_column, prediction, target]].dropna().groupby(time_column):
        buckets = min(10, len(group) // 2)
        if buckets < 2:
            continue
        ranked = pd.qcut(group[prediction].rank(method="first"), buckets, labels=False)
        spreads.append(group[target][ranked == buckets - 1].mean() - group[target][ranked == 0].mean())
    return float(np.mean(spreads)) if spreads else float("nan")


def main() -> None:
    from crypto_assets.ml import model
    from crypto_assets.ml.config import load_ml_config
    from crypto_assets.ml.metrics import long_short_spread

    config = load_ml_config()
    rng = np.random.default_rng(1)
    tokens, hours = 30, 8_600
    times = pd.date_range("2023-01-01", periods=hours, freq="h")
    frame = pd.DataFrame(
        {"bar_time": np.repeat(times, tokens), "token": np.tile([f"T{i}" for i in range(tokens)], hours)}
    )
    frame["category"] = np.tile(["DeFi", "Layer 1", "Meme", "NFT", "Infrastructure", "Payment"] * 5, hours)
    for feature in config.features:
        frame[feature] = rng.normal(size=len(frame))
    frame[config.target] = 0.01 * frame["rsi_14"] + rng.normal(scale=0.05, size=len(frame))
    frame["is_gap"] = False
    frame = model.training_frame(frame, config)
    print(f"{len(frame):,} rows x {len(config.features)} features, {config.folds} folds")
    started = time.perf_counter()
    evaluation = model.evaluate(frame, config)
    print(f"walk-forward evaluation: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    model.fit_final(frame, config)
    print(f"final fit of both models: {time.perf_counter() - started:.1f} s")
    rows = evaluation.predictions
    started = time.perf_counter()
    before = _qcut_loop(rows, "r_model", "target", "bar_time")
    loop = time.perf_counter() - started
    started = time.perf_counter()
    after = long_short_spread(rows, "r_model", "target", "bar_time")
    vectorised = time.perf_counter() - started
    print(
        f"long-short spread of {len(rows):,} out-of-fold rows: qcut per timestamp {loop:.1f} s,"
        f" vectorised {vectorised:.2f} s ({loop / vectorised:.0f}x); values {before:.6f} / {after:.6f}"
        " (the evaluation computes it 4 times per predictor and category: 28 calls)"
    )


if __name__ == "__main__":
    main()
