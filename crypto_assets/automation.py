"""Declarative automation: every layer below raw follows new upstream days by itself.

A raw partition can land by many routes (the daily schedule, ``crypto-analytics import``, a UI
backfill of raw alone, later the live stream). Whatever the route, bronze, silver, gold and the
model's daily assets of the days it touches are then requested by Dagster's automation sensor,
without a person, so the warehouse never lags the lake.
"""

from __future__ import annotations

from dagster import AssetSelection, AutomationCondition

# Tag of the runs that are one part of a `crypto-analytics run` whose downstream the command runs
# itself next: its warm-up (look-back history for the range, not days a user asked for) and its
# background CoinGecko fetch. Automation leaves their updates to the command.
CLI_PART_TAG = "crypto-analytics/part-of-cli-run"
# Set by `crypto-analytics run` for the child process that fetches CoinGecko beside it.
CLI_PART_ENV = "CRYPTO_ANALYTICS_PART_OF_CLI_RUN"
# Upstream that a day may lack and still run: CoinGecko's markets (optional inputs: a source that
# may not have been ingested) and the model (predictions come from a baseline until one serves).
MODELS = ("ml_candidate_model", "ml_serving_model", "vol_candidate_model", "vol_serving_model")
MAY_BE_ABSENT = ("raw_coingecko_markets", "silver_token_markets", *MODELS)


def follows_upstream() -> AutomationCondition:
    """True for a day whose upstream days were updated since it last ran (or was requested),
    when neither it nor its upstream is being written.

    Unlike ``AutomationCondition.eager()`` it follows every day, not only the latest (an import
    of 2023 must reach the warehouse too), and it runs a day whose look-back is incomplete:
    windows that lack history stay null, as in any run. Dagster sees same-day dependencies (the
    lake IO manager widens reads by the look-back), so a day requests that day in each layer; the
    earlier days whose forward targets it completes are refreshed by targets_refresh_job. Updates
    by a run that also wrote this asset are ignored (that run already did the work), and so are
    the parts of a CLI run that the CLI follows itself (its warm-up, its CoinGecko fetch). A day
    waits while an upstream day it needs is absent (a canceled or failed run wrote some layers and
    not others): requesting it would only fail.
    """
    updated = (
        AutomationCondition.newly_updated()
        & ~AutomationCondition.executed_with_root_target()
        & ~AutomationCondition.executed_with_tags(tag_keys={CLI_PART_TAG})
    ).with_label("newly updated by another run")
    # A run canceled or failed half-way leaves some layers of a day written and others not: the
    # day follows once every upstream it needs is there (or requested in the same tick).
    absent = (
        AutomationCondition.any_deps_match(
            AutomationCondition.missing() & ~AutomationCondition.will_be_requested()
        )
        .ignore(AssetSelection.assets(*MAY_BE_ABSENT))
        .with_label("an upstream day it needs is absent")
    )
    return (
        AutomationCondition.any_deps_match(updated | AutomationCondition.will_be_requested())
        # A promoted model is lineage, not a reason to predict every past day again.
        .ignore(AssetSelection.assets(*MODELS))
        .with_label("upstream days updated")
        .since_last_handled()
        & ~absent
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("follows upstream days")
