from dagster import AssetKey

from crypto_assets.checks import NO_DUPLICATE_KEYS, NO_NULL_KEYS, OHLC_CONSISTENT, TOKEN_COVERAGE
from crypto_assets.definitions import build_definitions, defs

LINEAGE = {
    "raw_klines": set(),
    "raw_coingecko_markets": set(),
    "bronze_klines": {"raw_klines"},
    "silver_bars_5m": {"bronze_klines"},
    "silver_bars_1h": {"bronze_klines"},
    "silver_bars_1d": {"bronze_klines"},
    "silver_features_1h": {"silver_bars_1h"},
    "silver_features_1d": {"silver_bars_1d"},
    "silver_token_markets": {"raw_coingecko_markets"},
    "gold_market_features": {"silver_features_1h", "silver_token_markets"},
    "gold_daily_market_features": {"silver_features_1d", "silver_token_markets"},
    "gold_category_index": {"silver_features_1h", "silver_features_1d", "silver_token_markets"},
    "gold_correlations": {"silver_bars_1h"},
    "gold_venue_prices": {"bronze_klines", "silver_token_markets"},
    "gold_bars_5m": {"silver_bars_5m"},
    "ml_predictions": {"gold_market_features", "ml_serving_model"},  # the model it serves with
    "ml_performance": {"ml_predictions", "gold_market_features"},
    "vol_forecasts": {"silver_bars_1h", "vol_serving_model"},
}


def test_definitions_load_and_resolve():
    Definitions = type(defs)
    Definitions.validate_loadable(build_definitions())
    repo = defs.get_repository_def()
    job = defs.resolve_job_def("market_data_job")
    assert job.partitions_def is not None
    assert {s.name for s in repo.schedule_defs} == {
        "daily_market_data_schedule",
        "weekly_model_training_schedule",
    }
    graph = defs.resolve_asset_graph()
    assert {p.to_user_string() for p in graph.get(AssetKey("ml_serving_model")).parent_keys} == {
        "ml_candidate_model"
    }
    assert {p.to_user_string() for p in graph.get(AssetKey("vol_candidate_model")).parent_keys} == {
        "silver_bars_1h"
    }
    assert set(repo.get_top_level_resources()) >= {
        "pyspark",
        "lake_io_manager",
        "warehouse_io_manager",
        "binance",
    }


def test_lineage_and_partitions():
    graph = defs.resolve_asset_graph()
    for name, parents in LINEAGE.items():
        node = graph.get(AssetKey(name))
        assert {p.to_user_string() for p in node.parent_keys} == parents
        assert (
            node.partitions_def is not None and node.partitions_def.get_first_partition_key() == "2017-08-17"
        )
        assert node.description  # the docstring is the asset's description in the UI


def test_every_layer_declares_its_checks():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    for name in ("bronze_klines", "silver_bars_1h", "silver_features_1h", "gold_market_features"):
        assert {
            (name, c) for c in (NO_DUPLICATE_KEYS, NO_NULL_KEYS, OHLC_CONSISTENT, TOKEN_COVERAGE)
        } <= checks
    assert ("raw_klines", TOKEN_COVERAGE) in checks
    assert ("raw_coingecko_markets", "every_token_has_a_source") in checks
    blocking = {k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert blocking == {
        NO_DUPLICATE_KEYS,
        NO_NULL_KEYS,
        OHLC_CONSISTENT,
        "schema",
        "value_ranges",
        "feature_warm_up",
        "promotion_gate",
        "vol_promotion_gate",
    }
    for name in ("silver_features_1h", "silver_features_1d"):
        assert {(name, c) for c in ("null_rates", "feature_warm_up", "stablecoin_peg", "schema")} <= checks
    assert ("silver_token_markets", "stablecoin_peg") in checks
    # Compared where the exchange's own klines are ingested (1h, 1d), not at 5m.
    consistency = {asset for asset, name in checks if name == "cross_interval_consistency"}
    assert consistency == {"silver_bars_1h", "silver_bars_1d"}


def test_look_backs_and_backfill_policies_follow_the_config():
    from dagster._core.definitions.backfill_policy import BackfillPolicyType

    from crypto_assets.silver.config import feature_plans

    graph = defs.resolve_asset_graph()
    for interval, plan in feature_plans().items():
        node = graph.get(AssetKey(f"silver_features_{interval}"))
        assert node.metadata["lookback_days"] == plan.lookback_days
    hourly = feature_plans()["1h"]
    assert hourly.lookback_days == 26  # MACD signal: 359 + 124 observed bars with a 25% allowance
    assert graph.get(AssetKey("raw_klines")).backfill_policy.policy_type == BackfillPolicyType.MULTI_RUN
    for name in ("bronze_klines", "silver_features_1h", "gold_market_features"):
        assert graph.get(AssetKey(name)).backfill_policy.policy_type == BackfillPolicyType.SINGLE_RUN
