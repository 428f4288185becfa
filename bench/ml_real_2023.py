"""The model on the real 2023 Binance year: import the 33 tokens' hourly bars, refine them to
GOLD_MARKET_FEATURES in the embedded warehouse, then run ml_training_job, whose walk-forward
evaluation trains on the first months and tests month by month on the rest, each month purged by
the 24h horizon and embargoed. Prints the model beside the three naive baselines, overall and per
category, the promotion gate's verdict and the permutation importances.

    .venv/bin/python bench/ml_real_2023.py [--min-training 90d --folds 9]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "binance_spot_1h_2023"
FIRST, LAST = "2023-01-01", "2023-12-30"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-training", default="90d", help="history before the first test fold")
    parser.add_argument("--folds", type=int, default=9, help="walk-forward test folds after it")
    parser.add_argument(
        "--keep", help="work in this folder and keep it: a second run skips the import and refinement"
    )
    args = parser.parse_args()
    if not REAL.is_dir():
        sys.exit(f"real data not found at {REAL}")
    from crypto_assets.pipeline_config import DEFAULT_PIPELINE_PATH

    with (
        contextlib.nullcontext(args.keep)
        if args.keep
        else tempfile.TemporaryDirectory(prefix="bench-ml-") as tmp
    ):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load(DEFAULT_PIPELINE_PATH.read_text())
        config["ml"].update({"min_training": args.min_training, "folds": args.folds})
        Path(tmp, "pipeline.yaml").write_text(yaml.safe_dump(config))
        os.environ.update(
            {
                "LAKE_ROOT": f"{tmp}/lake",
                "DAGSTER_HOME": f"{tmp}/dagster",
                "SNOWFLAKE_SCHEMA": "BENCH_ML",
                "PIPELINE_CONFIG": f"{tmp}/pipeline.yaml",
            }
        )
        os.environ.pop("SNOWFLAKE_ACCOUNT", None)
        from crypto_assets.services import free_port

        os.environ["WAREHOUSE_PORT"] = str(free_port())
        from crypto_assets.cli import prepare_dagster_home
        from resources.settings import Settings

        prepare_dagster_home(Settings.from_env())
        run(refine=not Path(tmp, "lake", "raw").exists())


def run(refine: bool = True) -> None:
    import pandas as pd
    from dagster import DagsterInstance

    from crypto_assets.definitions import build_definitions
    from crypto_assets.ml.registry import ModelRegistry
    from crypto_assets.raw.file_import import find_files, import_files
    from crypto_assets.services import local_services
    from resources.settings import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    if refine:
        import_files(find_files(REAL), settings, say=lambda _: None)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with local_services(settings, emulator=False, say=lambda _: None):
        definitions = build_definitions(settings)
        instance = DagsterInstance.get()
        if refine:
            refined = definitions.resolve_job_def("refinement_job").execute_in_process(
                instance=instance,
                run_config=quiet,
                tags={
                    "dagster/asset_partition_range_start": FIRST,
                    "dagster/asset_partition_range_end": LAST,
                },
            )
            assert refined.success, "refinement failed"
            print(f"real 2023 year imported and refined to gold in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        trained = definitions.resolve_job_def("ml_training_job").execute_in_process(
            instance=instance, run_config=quiet, raise_on_error=False
        )
        print(f"ml_training_job in {time.perf_counter() - started:.0f} s")
    registry = ModelRegistry(settings.lake_root / "models")
    card = registry.card(registry.versions()[-1])
    print(f"model {card['version']}: trained on {card['training_rows']:,} rows, {card['training_window']}")
    print(
        "folds:",
        json.dumps([(f["test_start"][:10], f["test_end"][:10], f["test_rows"]) for f in card["folds"]]),
    )
    overall = pd.DataFrame(card["metrics"])
    print("\nwalk-forward validation, all tokens (model beside the baselines):")
    print(overall.round(4).to_markdown())
    per_category = pd.DataFrame(card["metrics_per_category"]).T
    for metric in ("roc_auc", "brier", "ic"):
        table = per_category[per_category.index.str.endswith(f"/{metric}")]
        print(f"\nper category: {metric}")
        print(table.rename(index=lambda i: i.split("/")[0]).round(4).to_markdown())
    print(
        "\npromotion gate:",
        "PASSED" if card["gate"]["passed"] else "FAILED",
        "-",
        "; ".join(card["gate"]["reasons"]),
    )
    print("permutation importance (ROC-AUC drop):", json.dumps(card["permutation_importance"]))
    print("features left out:", json.dumps(card.get("features_left_out", {})))
    print("training run success:", trained.success)


if __name__ == "__main__":
    main()
