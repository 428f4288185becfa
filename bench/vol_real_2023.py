"""The volatility model on the real 2023 Binance year (../shared/data/real/binance_spot_1h_2023):
next-24h realised variance of 28 non-stablecoin tokens, walk-forward (90 days before the first
test fold, then 9 test folds, each purged by the 24h horizon and embargoed a day), the model
(HAR-X) beside the last 24h, the EWMA (lambda chosen in each training fold) and HAR-RV, scored
with QLIKE and the RMSE of log variance, overall and per category; the same again with shuffled
training targets (a leakage check: the gate must refuse it); and the time the fits take.

    .venv/bin/python bench/vol_real_2023.py [--min-training 90d --folds 9]
    .venv/bin/python bench/vol_real_2023.py --emulated 32 --min-training 7d --folds 4   # make run's month
    .venv/bin/python bench/vol_real_2023.py --emulated 365                              # a year of it

It runs the module the pipeline's assets run (crypto_assets/ml/volatility.py) on the files as
they are: no lake, no warehouse, ~3 s. ``--emulated N`` runs it on the exchange emulator's last N
days of hourly klines (up to 2026-12-06) instead: what the default `make run` trains on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "binance_spot_1h_2023"


def load_real_bars(folder: Path = REAL) -> pd.DataFrame:
    """The real hourly files as the bars :func:`volatility_frame` reads (missing hours stay missing)."""
    from crypto_assets.universe import load_universe

    category = {t.symbol: t.category for t in load_universe().tokens}
    frames = []
    for path in sorted(folder.glob("*USDT_1h.csv.gz")):
        raw = pd.read_csv(path)
        token = str(raw["ticker"].iloc[0]).removesuffix("USDT")
        frames.append(
            raw[["open", "high", "low", "close", "volume"]].assign(
                bar_time=pd.to_datetime(raw["date"]), token=token, category=category[token]
            )
        )
    return pd.concat(frames, ignore_index=True)


def load_emulated_bars(days: int, end: str = "2026-12-06") -> pd.DataFrame:
    """The emulator's hourly klines of every listed token for ``days`` days before ``end``."""
    from crypto_assets.emulator.market import DAY_MS, Market
    from crypto_assets.universe import load_universe

    universe = load_universe()
    market = Market(universe)
    stop = int(pd.Timestamp(end, tz="UTC").timestamp() * 1000)
    start = stop - days * DAY_MS
    frames = []
    for token in universe.tokens:
        pair = f"{token.symbol}{universe.quote_asset}"
        rows, cursor = [], start
        while cursor < stop and pair in market.listings:
            page = market.klines(pair, "1h", start_ms=cursor, end_ms=stop - 1, limit=1000, now_ms=stop)
            if not page:
                break
            rows += page
            cursor = page[-1][0] + 3_600_000
        if rows:
            frame = pd.DataFrame(
                [r[:6] for r in rows], columns=["t", "open", "high", "low", "close", "volume"]
            )
            frames.append(
                frame.astype({c: float for c in ("open", "high", "low", "close", "volume")}).assign(
                    bar_time=pd.to_datetime(frame["t"], unit="ms"),
                    token=token.symbol,
                    category=token.category,
                )
            )
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-training", default="90d", help="history before the first test fold")
    parser.add_argument("--folds", type=int, default=9, help="walk-forward test folds after it")
    parser.add_argument("--emulated", type=int, help="the emulator's last N days instead of the real year")
    args = parser.parse_args()
    if not args.emulated and not REAL.is_dir():
        sys.exit(f"real data not found at {REAL}")
    from crypto_assets.ml import volatility as vol
    from crypto_assets.pipeline_config import load_pipeline_config

    bars = load_emulated_bars(args.emulated) if args.emulated else load_real_bars()
    print("emulated market," if args.emulated else "real 2023 Binance year,", end=" ")
    started = time.perf_counter()
    frame = vol.volatility_frame(bars, stablecoins=load_pipeline_config().stablecoins)
    features_s = time.perf_counter() - started
    print(
        f"{len(bars):,} hourly bars of {bars['token'].nunique()} tokens -> {len(frame):,} rows of"
        f" {frame['token'].nunique()} non-stablecoin tokens in {features_s:.2f} s;"
        f" {int(vol.scorable(frame).sum()):,} scorable"
    )
    options = {
        "folds": args.folds,
        "min_training": pd.Timedelta(args.min_training),
        "embargo": pd.Timedelta("24h"),
    }
    started = time.perf_counter()
    evaluation = vol.evaluate(frame, **options)
    print(
        f"walk-forward in {time.perf_counter() - started:.2f} s (the model's fits:"
        f" {evaluation.fit_seconds:.2f} s over {len(evaluation.folds)} folds)"
    )
    print("\nout of fold, all tokens:")
    print(evaluation.overall.round(4).to_markdown())
    for metric in ("qlike", "rmse_log_var"):
        print(f"\nper category: {metric}")
        print(evaluation.per_category.xs(metric, level="metric").round(4).to_markdown())
    won = evaluation.categories_won()
    har, mine = evaluation.value("qlike", vol.HAR), evaluation.value("qlike")
    print(
        f"\nQLIKE vs HAR-RV: {mine:.4f} vs {har:.4f} ({(mine / har - 1):+.1%}); categories won:"
        f" {len(won)} of {evaluation.per_category.index.get_level_values(0).nunique()} ({', '.join(won)})"
    )
    gate = vol.promotion_gate(evaluation, None, 0.0)
    print("promotion gate:", "PASSED" if gate.passed else "REFUSED", "-", "; ".join(gate.reasons))
    print("EWMA lambda per fold:", [f["ewma_lambda"] for f in evaluation.folds])
    shuffled = vol.evaluate(frame, **options, shuffle_target=True, seed=20231)
    verdict = vol.promotion_gate(shuffled, None, 0.0)
    print(
        f"\nshuffled training targets: model QLIKE {shuffled.value('qlike'):.4f}, gate"
        f" {'PASSED (a leak!)' if verdict.passed else 'REFUSED'}"
    )


if __name__ == "__main__":
    main()
