"""Deterministic payment-transaction simulator with known fraud scenarios and an emerging pattern.

Customers live somewhere on a 100 km x 100 km map, own one or two cards and shop at terminals near
home. Fraud arrives through three long-standing scenarios and, from ``emerging_day`` on, a new one
that a model trained earlier has never seen:

- ``large_amount``: a stolen card used once for a large purchase anywhere on the map;
- ``compromised_terminal``: a skimmed terminal; for two weeks about half its transactions are fraud;
- ``compromised_card``: for two weeks a third of a card's purchases are inflated three- to six-fold;
- ``card_testing`` (emerging): a burst of tiny night-time charges at far-away terminals, then a
  few moderate "cash-out" charges within the hour.

Every random draw comes from one ``numpy.random.Generator`` seeded by ``SimulationConfig.seed``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

SECONDS_PER_DAY = 86_400
MAP_SIZE_KM = 100.0
SCENARIOS = ("legit", "large_amount", "compromised_terminal", "compromised_card", "card_testing")
EMERGING_SCENARIO = "card_testing"


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 7
    start_date: str = "2026-01-05"
    days: int = 120
    transactions_per_day: int = 10_000
    customers: int = 5_000
    terminals: int = 10_000
    terminals_per_customer: int = 25
    emerging_day: int = 63
    away_from_home_share: float = 0.05
    # fraud scenario rates per day, for every 10,000 transactions a day
    large_amount_per_day: float = 12.0
    compromised_terminals_per_day: float = 2.0
    compromised_cards_per_day: float = 3.0
    compromise_days: int = 14
    card_testing_attacks_per_day: float = 7.0

    def __post_init__(self) -> None:
        checks = {
            "days": self.days >= 1,
            "transactions_per_day": self.transactions_per_day >= 1,
            "customers": self.customers >= 1,
            "terminals": self.terminals >= 2,
            "terminals_per_customer": 1 <= self.terminals_per_customer <= self.terminals,
            "emerging_day": 0 <= self.emerging_day <= self.days,
            "compromise_days": self.compromise_days >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"simulation setting {name}={getattr(self, name)!r} is out of range"
                )
        pd.Timestamp(self.start_date)  # raises a clear ValueError on a bad date

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.start_date)

    @property
    def emerging_date(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.emerging_day)


@dataclass
class SimulatedData:
    config: SimulationConfig
    transactions: pd.DataFrame
    customers: pd.DataFrame
    terminals: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def write(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.transactions.to_parquet(directory / "transactions.parquet", index=False)
        self.customers.to_parquet(directory / "customers.parquet", index=False)
        self.terminals.to_parquet(directory / "terminals.parquet", index=False)
        meta = {"config": asdict(self.config), "summary": self.summary}
        (directory / "simulation.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def read(cls, directory: Path) -> SimulatedData:
        directory = Path(directory)
        meta = json.loads((directory / "simulation.json").read_text())
        return cls(
            config=SimulationConfig(**meta["config"]),
            transactions=pd.read_parquet(directory / "transactions.parquet"),
            customers=pd.read_parquet(directory / "customers.parquet"),
            terminals=pd.read_parquet(directory / "terminals.parquet"),
            summary=meta["summary"],
        )


def _scaled(cfg: SimulationConfig, per_day: float) -> float:
    """Scenario rates are set per 10,000 daily transactions, so the fraud rate keeps its level."""
    return per_day * cfg.transactions_per_day / 10_000


def _make_population(cfg: SimulationConfig, rng: np.random.Generator):
    n = cfg.customers
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "x_km": rng.uniform(0, MAP_SIZE_KM, n),
            "y_km": rng.uniform(0, MAP_SIZE_KM, n),
            "mean_amount": rng.uniform(5, 100, n),
            "tx_rate": rng.uniform(0, 4, n),
            "n_cards": 1 + (rng.random(n) < 0.3).astype(np.int64),
        }
    )
    customers["std_amount"] = customers["mean_amount"] / 2
    # scale rates so the expected daily volume is what was asked for
    customers["tx_rate"] *= cfg.transactions_per_day / customers["tx_rate"].sum()
    terminals = pd.DataFrame(
        {
            "terminal_id": np.arange(cfg.terminals, dtype=np.int64),
            "x_km": rng.uniform(0, MAP_SIZE_KM, cfg.terminals),
            "y_km": rng.uniform(0, MAP_SIZE_KM, cfg.terminals),
        }
    )
    # card ids: customer c owns cards first_card[c] .. first_card[c] + n_cards[c] - 1
    first_card = np.concatenate([[0], np.cumsum(customers["n_cards"].to_numpy())[:-1]])
    customers["first_card_id"] = first_card
    tree = cKDTree(terminals[["x_km", "y_km"]].to_numpy())
    _, nearby = tree.query(customers[["x_km", "y_km"]].to_numpy(), k=cfg.terminals_per_customer)
    nearby = np.asarray(nearby).reshape(n, cfg.terminals_per_customer)
    return customers, terminals, nearby


def _legit_transactions(cfg, rng, customers, nearby) -> pd.DataFrame:
    rates = customers["tx_rate"].to_numpy()
    counts = rng.poisson(np.broadcast_to(rates, (cfg.days, len(rates))))
    day, customer = np.nonzero(counts)
    reps = counts[day, customer]
    day = np.repeat(day, reps)
    customer = np.repeat(customer, reps)
    n = len(day)
    seconds = rng.normal(SECONDS_PER_DAY / 2, 20_000, n)
    seconds = np.mod(seconds, SECONDS_PER_DAY)  # the tails wrap round into the night
    mean = customers["mean_amount"].to_numpy()[customer]
    std = customers["std_amount"].to_numpy()[customer]
    amount = np.round(np.maximum(rng.normal(mean, std), 0.5), 2)
    terminal = nearby[customer, rng.integers(0, nearby.shape[1], n)]
    # some purchases happen far from home (travel, online shops): distance alone is no proof
    away = rng.random(n) < cfg.away_from_home_share
    terminal = np.where(away, rng.integers(0, cfg.terminals, n), terminal)
    n_cards = customers["n_cards"].to_numpy()[customer]
    card = customers["first_card_id"].to_numpy()[customer] + rng.integers(0, n_cards)
    return pd.DataFrame(
        {
            "seconds": day * SECONDS_PER_DAY + seconds,
            "customer_id": customer,
            "card_id": card,
            "terminal_id": terminal,
            "amount": amount,
            "is_fraud": np.zeros(n, dtype=np.int8),
            "scenario": np.zeros(n, dtype=np.int8),
        }
    )


def _card_owner(customers: pd.DataFrame, cards: np.ndarray) -> np.ndarray:
    first = customers["first_card_id"].to_numpy()
    return np.searchsorted(first, cards, side="right") - 1


def _large_amount_frauds(cfg, rng, customers, n_terminals) -> pd.DataFrame:
    n_cards = int(customers["n_cards"].sum())
    per_day = rng.poisson(_scaled(cfg, cfg.large_amount_per_day), cfg.days)
    day = np.repeat(np.arange(cfg.days), per_day)
    n = len(day)
    card = rng.integers(0, n_cards, n)
    return pd.DataFrame(
        {
            "seconds": day * SECONDS_PER_DAY + rng.uniform(0, SECONDS_PER_DAY, n),
            "customer_id": _card_owner(customers, card),
            "card_id": card,
            "terminal_id": rng.integers(0, n_terminals, n),
            "amount": np.round(rng.uniform(250, 2000, n), 2),
            "is_fraud": np.ones(n, dtype=np.int8),
            "scenario": np.full(n, SCENARIOS.index("large_amount"), dtype=np.int8),
        }
    )


def _compromise_terminals(cfg, rng, tx: pd.DataFrame, n_terminals: int) -> None:
    """Skimmed terminals: about half their transactions in the window become fraud."""
    per_day = rng.poisson(_scaled(cfg, cfg.compromised_terminals_per_day), cfg.days)
    day = np.repeat(np.arange(cfg.days), per_day)
    terminals = rng.integers(0, n_terminals, len(day))
    coin = rng.random(len(tx))
    tx_terminal = tx["terminal_id"].to_numpy()
    tx_day = (tx["seconds"].to_numpy() // SECONDS_PER_DAY).astype(np.int64)
    hit = np.zeros(len(tx), dtype=bool)
    for start, terminal in zip(day, terminals, strict=True):
        hit |= (
            (tx_terminal == terminal) & (tx_day > start) & (tx_day <= start + cfg.compromise_days)
        )
    hit &= coin < 0.5
    hit &= tx["is_fraud"].to_numpy() == 0
    tx.loc[hit, "is_fraud"] = 1
    tx.loc[hit, "scenario"] = SCENARIOS.index("compromised_terminal")


def _compromise_cards(cfg, rng, tx: pd.DataFrame, n_cards: int) -> None:
    """Cloned cards: a third of the purchases in the window are inflated 3-6x and are fraud."""
    per_day = rng.poisson(_scaled(cfg, cfg.compromised_cards_per_day), cfg.days)
    day = np.repeat(np.arange(cfg.days), per_day)
    cards = rng.integers(0, n_cards, len(day))
    compromised_from = np.full(n_cards, np.iinfo(np.int64).max)
    np.minimum.at(compromised_from, cards, day)
    coin = rng.random(len(tx))
    factor = rng.uniform(3, 6, len(tx))
    tx_day = (tx["seconds"].to_numpy() // SECONDS_PER_DAY).astype(np.int64)
    start = compromised_from[tx["card_id"].to_numpy()]
    hit = (tx_day > start) & (tx_day <= start + cfg.compromise_days) & (coin < 1 / 3)
    hit &= tx["is_fraud"].to_numpy() == 0
    tx.loc[hit, "amount"] = np.round(tx.loc[hit, "amount"].to_numpy() * factor[hit], 2)
    tx.loc[hit, "is_fraud"] = 1
    tx.loc[hit, "scenario"] = SCENARIOS.index("compromised_card")


def _card_testing_frauds(cfg, rng, customers, n_terminals) -> pd.DataFrame:
    """The emerging pattern: tiny night-time probes, then moderate cash-out charges."""
    days = np.arange(cfg.emerging_day, cfg.days)
    per_day = rng.poisson(_scaled(cfg, cfg.card_testing_attacks_per_day), len(days))
    attack_day = np.repeat(days, per_day)
    n_attacks = len(attack_day)
    n_cards = int(customers["n_cards"].sum())
    card = rng.integers(0, n_cards, n_attacks)
    owner = _card_owner(customers, card)
    start = attack_day * SECONDS_PER_DAY + rng.uniform(0, 4 * 3600, n_attacks)
    probes = rng.integers(3, 7, n_attacks)
    cashouts = rng.integers(1, 4, n_attacks)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("seconds", "attack", "amount")}
    # probes: spaced 20-120 s apart, $0.50-$2.99
    attack = np.repeat(np.arange(n_attacks), probes)
    gaps = rng.uniform(20, 120, len(attack))
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(probes) - probes], probes)
    rows["seconds"].append(start[attack] + offsets)
    rows["attack"].append(attack)
    rows["amount"].append(np.round(rng.uniform(0.5, 2.99, len(attack)), 2))
    # cash-out: 5-60 min after the burst, 1.5-2.5x the customer's usual amount
    attack = np.repeat(np.arange(n_attacks), cashouts)
    rows["seconds"].append(start[attack] + 600 + rng.uniform(300, 3600, len(attack)))
    rows["attack"].append(attack)
    usual = customers["mean_amount"].to_numpy()[owner[attack]]
    rows["amount"].append(np.round(usual * rng.uniform(1.5, 2.5, len(attack)), 2))
    attack = np.concatenate(rows["attack"])
    n = len(attack)
    return pd.DataFrame(
        {
            "seconds": np.concatenate(rows["seconds"]),
            "customer_id": owner[attack],
            "card_id": card[attack],
            "terminal_id": rng.integers(0, n_terminals, n),
            "amount": np.concatenate(rows["amount"]),
            "is_fraud": np.ones(n, dtype=np.int8),
            "scenario": np.full(n, SCENARIOS.index(EMERGING_SCENARIO), dtype=np.int8),
        }
    )


def simulate(cfg: SimulationConfig | None = None) -> SimulatedData:
    """Generate customers, terminals and `days` of labelled transactions, sorted by time."""
    cfg = cfg or SimulationConfig()
    rng = np.random.default_rng(cfg.seed)
    customers, terminals, nearby = _make_population(cfg, rng)
    n_cards = int(customers["n_cards"].sum())
    legit = _legit_transactions(cfg, rng, customers, nearby)
    _compromise_terminals(cfg, rng, legit, cfg.terminals)
    _compromise_cards(cfg, rng, legit, n_cards)
    parts = [legit, _large_amount_frauds(cfg, rng, customers, cfg.terminals)]
    if cfg.emerging_day < cfg.days:
        parts.append(_card_testing_frauds(cfg, rng, customers, cfg.terminals))
    tx = pd.concat(parts, ignore_index=True)
    tx = tx[tx["seconds"] < cfg.days * SECONDS_PER_DAY]
    tx = tx.sort_values(["seconds", "card_id"], kind="stable", ignore_index=True)
    tx.insert(0, "transaction_id", [f"tx-{cfg.seed}-{i:09d}" for i in range(len(tx))])
    tx.insert(1, "timestamp", cfg.start + pd.to_timedelta(np.round(tx["seconds"], 3), unit="s"))
    tx["scenario"] = pd.Categorical.from_codes(
        tx["scenario"].to_numpy(), categories=pd.Index(SCENARIOS)
    )
    tx = tx.drop(columns="seconds")
    customers = customers.drop(columns=["tx_rate"])
    summary = {
        "transactions": len(tx),
        "frauds": int(tx["is_fraud"].sum()),
        "fraud_rate": float(tx["is_fraud"].mean()),
        "by_scenario": {k: int(v) for k, v in tx["scenario"].value_counts().items()},
        "emerging_date": str(cfg.emerging_date.date()),
    }
    return SimulatedData(cfg, tx, customers, terminals, summary)
