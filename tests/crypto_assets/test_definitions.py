from dagster import AssetKey

from crypto_assets.checks import NO_DUPLICATE_KEYS, NO_NULL_KEYS, OHLC_CONSISTENT, TOKEN_COVERAGE
from crypto_assets.definitions import build_definitions, defs

LINEAGE = {
    "raw_klines": set(),
    "raw_coingecko_markets": set(),
    "bronze_klines": {"raw_klines"},
    "silver_features": {"bronze_klines"},
    "gold_market_features": {"silver_features"},
}


def test_definitions_load_and_resolve():
    Definitions = type(defs)
    Definitions.validate_loadable(build_definitions())
    repo = defs.get_repository_def()
    job = defs.resolve_job_def("market_data_job")
    assert job.partitions_def is not None
    assert {s.name for s in repo.schedule_defs} == {"daily_market_data_schedule"}
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
    for name in ("bronze_klines", "silver_features", "gold_market_features"):
        assert {
            (name, c) for c in (NO_DUPLICATE_KEYS, NO_NULL_KEYS, OHLC_CONSISTENT, TOKEN_COVERAGE)
        } <= checks
    assert ("raw_klines", TOKEN_COVERAGE) in checks
    assert ("raw_coingecko_markets", "every_token_has_a_source") in checks
    blocking = {k.name for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert blocking == {NO_DUPLICATE_KEYS, NO_NULL_KEYS, OHLC_CONSISTENT}
