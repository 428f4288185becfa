"""Declarative automation, evaluated against a real (ephemeral) Dagster instance, tick by tick."""

from dagster import (
    AssetDep,
    AssetMaterialization,
    DagsterInstance,
    DailyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from crypto_assets.automation import CLI_PART_TAG, follows_upstream
from crypto_assets.definitions import defs

DAYS = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=0)


@asset(partitions_def=DAYS)
def upstream() -> int:
    return 1


@asset(
    partitions_def=DAYS,
    automation_condition=follows_upstream(),
    # Like gold's targets: a day also reads the next day.
    deps=[AssetDep(upstream, partition_mapping=TimeWindowPartitionMapping(end_offset=1))],
)
def downstream() -> int:
    return 2


def _requested(result, key: str) -> list[str]:
    from dagster import AssetKey

    return sorted(result.get_requested_partitions(AssetKey(key)))


def test_a_day_updated_by_another_run_is_followed_with_the_days_that_read_it():
    instance = DagsterInstance.ephemeral()
    for day in ("2024-01-04", "2024-01-05", "2024-01-06"):  # the history the days read
        assert materialize([upstream], partition_key=day, instance=instance, tags={CLI_PART_TAG: "x"}).success
    first = evaluate_automation_conditions([upstream, downstream], instance)
    assert first.total_requested == 0  # nothing is new on the first tick

    assert materialize([upstream], partition_key="2024-01-05", instance=instance).success
    result = evaluate_automation_conditions([upstream, downstream], instance, cursor=first.cursor)
    # Day 5 itself, and day 4, whose look-ahead reads day 5 (e.g. its 24h target).
    assert _requested(result, "downstream") == ["2024-01-04", "2024-01-05"]
    # Requested once: the next tick does not ask again.
    again = evaluate_automation_conditions([upstream, downstream], instance, cursor=result.cursor)
    assert again.total_requested == 0


def test_a_day_waits_while_an_upstream_day_it_needs_is_absent():
    """A run canceled after writing one layer: the layers below it follow only once every
    upstream day they read is there (requested then, they failed, or wrote an empty day)."""
    instance = DagsterInstance.ephemeral()
    cursor = evaluate_automation_conditions([upstream, downstream], instance).cursor
    assert materialize([upstream], partition_key="2024-01-08", instance=instance).success
    result = evaluate_automation_conditions([upstream, downstream], instance, cursor=cursor)
    # Day 8 reads day 9 (absent) and day 7 reads day 7 (absent): neither is requested yet.
    assert _requested(result, "downstream") == []
    assert materialize([upstream], partition_key="2024-01-09", instance=instance).success
    result = evaluate_automation_conditions([upstream, downstream], instance, cursor=result.cursor)
    assert "2024-01-08" in _requested(result, "downstream")  # whole now: followed


def test_a_run_that_wrote_both_and_the_warm_up_history_are_left_alone():
    instance = DagsterInstance.ephemeral()
    for day in ("2024-01-06", "2024-01-07", "2024-01-08"):
        assert materialize([upstream], partition_key=day, instance=instance, tags={CLI_PART_TAG: "x"}).success
    cursor = evaluate_automation_conditions([upstream, downstream], instance).cursor
    # One run over both assets: it already did the work.
    assert materialize(
        [upstream, downstream],
        partition_key="2024-01-07",
        instance=instance,
        selection=[upstream, downstream],
    ).success
    # The CLI's warm-up: history for the range it runs next.
    assert materialize(
        [upstream], partition_key="2024-01-02", instance=instance, tags={CLI_PART_TAG: "warm-up"}
    ).success
    result = evaluate_automation_conditions([upstream, downstream], instance, cursor=cursor)
    assert _requested(result, "downstream") == ["2024-01-06"]  # only the day that reads day 7 ahead


def test_a_raw_day_landing_by_any_route_requests_every_layer_of_that_day():
    """The platform's own definitions: an import (a runless raw materialization) of one old day."""
    instance = DagsterInstance.ephemeral()
    definitions = defs
    cursor = evaluate_automation_conditions(definitions, instance).cursor
    instance.report_runless_asset_event(AssetMaterialization("raw_klines", partition="2023-03-24"))
    result = evaluate_automation_conditions(definitions, instance, cursor=cursor)
    for key in (
        "bronze_klines",
        "silver_bars_1h",
        "silver_features_1h",
        "gold_market_features",
        "gold_daily_market_features",
        "ml_predictions",
        "ml_performance",
    ):
        assert "2023-03-24" in _requested(result, key), key
    # Raw is fetched, never automated; the model trains on its own schedule.
    for key in ("raw_klines", "raw_coingecko_markets", "ml_candidate_model", "ml_serving_model"):
        assert _requested(result, key) == [], key
    # That day only: look-back windows are read by the IO manager, not Dagster dependencies, so
    # one raw day never asks for the 605 days of daily features whose windows reach it.
    for key in (
        "silver_features_1d",
        "gold_daily_market_features",
        "gold_category_index",
        "gold_correlations",
        "gold_venue_prices",
    ):
        assert _requested(result, key) == ["2023-03-24"], key


def test_the_serving_model_is_upstream_of_predictions_in_the_lineage_but_triggers_nothing():
    from dagster import AssetKey

    graph = defs.resolve_asset_graph()
    assert AssetKey("ml_serving_model") in graph.get(AssetKey("ml_predictions")).parent_keys
    instance = DagsterInstance.ephemeral()
    cursor = evaluate_automation_conditions(defs, instance).cursor
    instance.report_runless_asset_event(AssetMaterialization("ml_serving_model"))
    result = evaluate_automation_conditions(defs, instance, cursor=cursor)
    assert _requested(result, "ml_predictions") == []  # a promotion does not re-predict history
