import pandas as pd
import pytest

from fraudgate.training.windows import DayWindow, LeakageError, TrainingPlan, assert_no_leakage


def test_default_plan_keeps_the_holdout_apart():
    plan = TrainingPlan()
    for name in ("v1_train", "v1_valid", "v2_train", "v2_valid"):
        assert not getattr(plan, name).overlaps(plan.holdout)


def test_seed_style_plan_is_refused():
    # the seed trained v2 on data that contained its holdout
    with pytest.raises(LeakageError, match="v2_train.*overlap the holdout"):
        TrainingPlan(v2_train=DayWindow(14, 120))


@pytest.mark.parametrize("days,emerging", [(120, 63), (40, 21), (60, 30), (365, 200)])
def test_scaled_plans_are_valid(days, emerging):
    plan = TrainingPlan.for_simulation(days, emerging)
    assert plan.v1_valid.end <= emerging < plan.v2_train.end <= plan.holdout.start
    assert plan.holdout.end == days


def test_row_level_check_catches_a_shared_id():
    parts = {
        "v2_train": pd.DataFrame({"transaction_id": ["a", "b"]}),
        "holdout": pd.DataFrame({"transaction_id": ["b", "c"]}),
    }
    with pytest.raises(LeakageError, match="1 holdout transactions in v2_train"):
        assert_no_leakage(parts)
