import pandas as pd
import pytest

from crypto_assets.ml.splits import FoldError, duration_text, walk_forward_folds

HOURS = pd.Series(pd.date_range("2023-01-01", "2023-06-30 23:00", freq="h"))
DAY = pd.Timedelta(days=1)


def test_training_stops_a_purge_gap_before_every_test_fold():
    folds = walk_forward_folds(HOURS, folds=4, min_train=pd.Timedelta(days=60), horizon=DAY, embargo=2 * DAY)
    assert len(folds) == 4
    for fold in folds:
        train, test = HOURS[fold.train_mask(HOURS)], HOURS[fold.test_mask(HOURS)]
        # The last training row's 24h target ends before the first test row starts.
        assert train.max() + DAY < test.min()
        assert test.min() - train.max() >= DAY
    covered = pd.concat([HOURS[f.test_mask(HOURS)] for f in folds])
    assert covered.is_unique and covered.max() == HOURS.max()  # folds tile the rest of the data


def test_an_embargo_follows_each_earlier_test_fold():
    folds = walk_forward_folds(HOURS, folds=3, min_train=pd.Timedelta(days=60), horizon=DAY, embargo=2 * DAY)
    last = folds[-1]
    train = HOURS[last.train_mask(HOURS)]
    for earlier in folds[:-1]:
        after = train[(train >= earlier.test_end) & (train < earlier.test_end + 2 * DAY)]
        assert after.empty


def test_a_purge_shorter_than_the_horizon_or_too_little_data_is_refused():
    with pytest.raises(
        FoldError, match=r"^purge 1 h is shorter than the target horizon 1 day: targets would leak$"
    ):
        walk_forward_folds(HOURS, folds=2, min_train=DAY, horizon=DAY, purge=pd.Timedelta(hours=1))
    # Said as a person says it (it was "1 days 23:00:00 of data ... needs 30 days 00:00:00").
    with pytest.raises(
        FoldError,
        match=r"^1 day 23 h of data is too little: training needs 30 days plus a 1 day purge before testing$",
    ):
        walk_forward_folds(HOURS.head(48), folds=2, min_train=pd.Timedelta(days=30), horizon=DAY)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        ("23h", "23 h"),
        ("1D", "1 day"),
        ("30D", "30 days"),
        ("2D6h", "2 days 6 h"),
        ("90min", "1 h 30 min"),
        ("0s", "0 min"),
    ],
)
def test_durations_read_as_people_write_them(delta: str, text: str):
    assert duration_text(pd.Timedelta(delta)) == text
