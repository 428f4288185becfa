"""The modelling core on synthetic panels where the truth is known: a real signal is found and
beats the baselines; shuffled targets, a leaked feature and a worse model are each caught."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crypto_assets.ml.config import parse_ml_config
from crypto_assets.ml.model import LeakError, evaluate, fit_final, promotion_gate, training_frame
from crypto_assets.ml.registry import ModelRegistry

TOKENS = {"BTC": "Layer 1", "ETH": "Layer 1", "DOGE": "Meme", "PEPE": "Meme", "UNI": "DeFi", "AAVE": "DeFi"}
CONFIG = parse_ml_config(
    {
        "ml": {
            "features": ["signal", "noise", "return_24h"],
            "categorical": ["category"],
            "min_training": "20d",
            "folds": 3,
            "embargo": "24h",
            "classifier": {"max_iter": 40, "min_samples_leaf": 40, "learning_rate": 0.1},
            "regressor": {"max_iter": 40, "min_samples_leaf": 40, "learning_rate": 0.1},
        }
    }
)


def _panel(days: int = 50, seed: int = 3, strength: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2023-01-01", periods=days * 24, freq="h")
    frame = pd.DataFrame(
        [(t, token, category) for t in times for token, category in TOKENS.items()],
        columns=["bar_time", "token", "category"],
    )
    n = len(frame)
    frame["signal"] = rng.normal(size=n)
    frame["noise"] = rng.normal(size=n)
    frame["return_24h"] = rng.normal(scale=0.02, size=n)
    frame["target_return_24h"] = strength * frame["signal"] + rng.normal(scale=0.02, size=n)
    frame["is_gap"] = False
    frame.loc[rng.random(n) < 0.05, "signal"] = np.nan  # warm-up and gaps: nulls the model takes
    return training_frame(frame, CONFIG)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _panel()


@pytest.fixture(scope="module")
def evaluation(panel):
    return evaluate(panel, CONFIG)


def test_a_real_signal_beats_every_baseline_and_passes_the_gate(evaluation):
    auc, brier = evaluation.value("roc_auc"), evaluation.value("brier")
    assert auc > 0.6 and evaluation.value("ic") > 0.15
    for baseline in ("always_up", "yesterdays_sign", "base_rate"):
        assert brier < evaluation.value("brier", baseline)
    assert promotion_gate(evaluation, None, 0.002).passed
    assert set(evaluation.per_category.index.get_level_values(0)) == {"DeFi", "Layer 1", "Meme"}
    assert evaluation.importance["signal"] > max(evaluation.importance["noise"], 0.01)


def test_targets_shuffled_in_time_fall_to_the_baselines(panel):
    rng = np.random.default_rng(11)
    shuffled = panel.assign(target_return_24h=rng.permutation(panel["target_return_24h"].to_numpy()))
    result = evaluate(shuffled, CONFIG, importance=False)
    assert abs(result.value("roc_auc") - 0.5) < 0.03 and abs(result.value("ic")) < 0.03
    gate = promotion_gate(result, None, 0.002)
    assert not gate.passed and any("baseline" in r for r in gate.reasons)


def test_a_feature_built_from_the_target_is_refused(panel):
    leaked = panel.assign(noise=panel["target_return_24h"] * 2 + 0.001)
    with pytest.raises(LeakError, match="noise"):
        evaluate(leaked, CONFIG)


def test_the_gate_keeps_a_better_serving_model(evaluation):
    better = {"brier": evaluation.value("brier") - 0.01, "roc_auc": evaluation.value("roc_auc") + 0.05}
    gate = promotion_gate(evaluation, better, 0.002)
    assert not gate.passed and any("serving model" in r for r in gate.reasons)


def test_training_is_deterministic_with_a_seed(panel):
    first = evaluate(panel, CONFIG, importance=False).predictions
    second = evaluate(panel, CONFIG, importance=False).predictions
    pd.testing.assert_frame_equal(first, second)


def test_a_saved_model_loads_and_predicts_in_a_later_code_version(panel, tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    classifier, regressor = fit_final(panel, CONFIG)
    # A card written by an older code version with its own feature list: prediction uses the
    # card's features, not today's config.
    card = {"features": ["signal", "noise", "return_24h"], "categorical": ["category"], "code_version": "old",
            "gate": {"passed": True, "reasons": ["test"]}, "metrics": {"model": {"brier": 0.2, "roc_auc": 0.6}}}  # fmt: skip
    registry.save("hgb-old", classifier, regressor, card)
    registry.promote("hgb-old", "test")
    from crypto_assets.ml.assets import predict_frame

    today = panel.tail(12).assign(extra_column_of_a_newer_gold=1.0)
    predictions, version = predict_frame(today, registry, _rates(today, 0.5, 0.0), CONFIG)
    assert version == "hgb-old" and len(predictions) == 12
    assert predictions["p_up"].between(0, 1).all() and predictions["predicted_return"].notna().all()


def test_without_a_serving_model_predictions_come_from_a_named_baseline(panel, tmp_path):
    from crypto_assets.ml.assets import predict_frame

    predictions, version = predict_frame(
        panel.tail(6), ModelRegistry(tmp_path / "none"), _rates(panel.tail(6), 0.55, 0.001), CONFIG
    )
    assert version == "baseline:base_rate" and (predictions["p_up"] == 0.55).all()
    assert (predictions["model_version"] == "baseline:base_rate").all()


def _rates(frame, up_rate: float, mean_return: float):
    days = pd.to_datetime(frame["bar_time"]).dt.date
    return (
        pd.DataFrame({"token": frame["token"], "dt": days})
        .drop_duplicates()
        .assign(up_rate=up_rate, mean_return=mean_return)
    )
