"""Time windows for training, threshold choice and the holdout, and the guard against leakage.

The seed trained its candidate on a set that contained its whole holdout. Here every window is a
half-open day range, the plan refuses overlapping windows, and ``split`` checks by transaction id
that no holdout row reaches a training or validation set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


class LeakageError(ValueError):
    """A holdout transaction would be seen in training or threshold choice."""


@dataclass(frozen=True)
class DayWindow:
    """Days since the data's start, half-open; fractional days allowed (short data sets)."""

    start: float
    end: float  # exclusive

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"window [{self.start}, {self.end}) must have 0 <= start < end")

    def overlaps(self, other: DayWindow) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class TrainingPlan:
    """Day ranges (from the simulation start) for both models and the shared holdout."""

    v1_train: DayWindow = DayWindow(14, 49)  # days before 14 only warm up the windowed features
    v1_valid: DayWindow = DayWindow(49, 63)
    v2_train: DayWindow = DayWindow(14, 84)
    v2_valid: DayWindow = DayWindow(84, 98)
    holdout: DayWindow = DayWindow(98, 120)

    def __post_init__(self) -> None:
        for name in ("v1_train", "v1_valid", "v2_train", "v2_valid"):
            window = getattr(self, name)
            if window.overlaps(self.holdout):
                raise LeakageError(
                    f"{name} days [{window.start}, {window.end}) overlap the holdout "
                    f"[{self.holdout.start}, {self.holdout.end}); no model may see holdout rows"
                )
        for model in ("v1", "v2"):
            train, valid = getattr(self, f"{model}_train"), getattr(self, f"{model}_valid")
            if train.overlaps(valid):
                raise LeakageError(f"{model} train and validation windows overlap")

    @classmethod
    def for_simulation(cls, days: int, emerging_day: int) -> TrainingPlan:
        """Scale the default layout to a simulation of `days` with the pattern at `emerging_day`.

        v1 trains and validates before the pattern; v2 trains on data including its early weeks
        and validates after; the holdout is the last stretch, seen by neither.
        """
        warmup = max(1, min(14, emerging_day // 4))
        holdout_start = days - max(2, round((days - emerging_day) * 22 / 57))
        v2_valid_start = emerging_day + round((holdout_start - emerging_day) * 21 / 35)
        v1_valid_start = warmup + round((emerging_day - warmup) * 35 / 49)
        return cls(
            v1_train=DayWindow(warmup, v1_valid_start),
            v1_valid=DayWindow(v1_valid_start, emerging_day),
            v2_train=DayWindow(warmup, v2_valid_start),
            v2_valid=DayWindow(v2_valid_start, holdout_start),
            holdout=DayWindow(holdout_start, days),
        )

    @classmethod
    def chronological(cls, total_days: float) -> TrainingPlan:
        """A plan by shares of time for data without a known pattern start (creditcard.csv)."""

        def window(a: float, b: float) -> DayWindow:
            return DayWindow(round(a * total_days, 6), round(b * total_days, 6))

        return cls(
            v1_train=window(0.0, 0.40),
            v1_valid=window(0.40, 0.55),
            v2_train=window(0.0, 0.65),
            v2_valid=window(0.65, 0.80),
            holdout=window(0.80, 1.0 + 1e-9),
        )

    def as_dict(self) -> dict[str, list[float]]:
        return {k: [v["start"], v["end"]] for k, v in asdict(self).items()}


def day_index(frame: pd.DataFrame, start: pd.Timestamp) -> pd.Series:
    return (frame["timestamp"] - start) / pd.Timedelta(days=1)


def split(frame: pd.DataFrame, plan: TrainingPlan, start: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Cut the feature frame into the plan's windows and prove the holdout is untouched."""
    days = day_index(frame, start)
    parts = {
        name: frame[(days >= window.start) & (days < window.end)]
        for name, window in vars(plan).items()
    }
    assert_no_leakage(parts)
    return parts


def assert_no_leakage(parts: dict[str, pd.DataFrame]) -> None:
    holdout_ids = set(parts["holdout"]["transaction_id"])
    for name, part in parts.items():
        if name == "holdout":
            continue
        leaked = holdout_ids.intersection(part["transaction_id"])
        if leaked:
            example = sorted(leaked)[:3]
            raise LeakageError(f"{len(leaked)} holdout transactions in {name}, e.g. {example}")
