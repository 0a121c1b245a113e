"""The report's monitoring section: CBPE estimates beside the realised figures and the score
drift against a training reference, from a real ledger, against numpy / scipy on the same
decisions; report.json against its schema; `fraudgate report` with a real MLflow registry."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import jsonschema
import numpy as np
import pytest
import yaml
from evaluation_sim import DAY, T0, A, B, config_data
from rich.console import Console
from scipy.stats import ks_2samp
from typer.testing import CliRunner

from fraudgate.analysis.drift import SCORE_COLUMN, column_drift, drift_reference
from fraudgate.analysis.estimated import expected_counts
from fraudgate.cli import app
from fraudgate.config import parse_config
from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES
from fraudgate.evaluation import ScoreReference, evaluate, registry_references
from fraudgate.ledger import Decision, Label, LedgerStore, open_ledger
from fraudgate.report.evaluation import SCHEMA_PATH, evaluation_json, render_monitoring
from fraudgate.report.evaluation_html import evaluation_html

THRESHOLDS = {A: 0.5, B: 0.3}
AS_OF = T0 + 45 * DAY  # with 30 maturity days: the first 14 event days are matured


@dataclass(frozen=True)
class Written:
    """Every decision written, as arrays."""

    model: np.ndarray
    role: np.ndarray
    day: np.ndarray
    score: np.ndarray
    flagged: np.ndarray


def _config(url: str, registry: str | None = None):
    uris = ("models:/fraud-detection@champion", "models:/fraud-detection@challenger")
    data = config_data(url, uris)
    data["monitoring"] = {"psi_warning": 0.1, "psi_alert": 0.25}
    if registry is not None:
        data["registry"] = registry
    return data


def _fill(store: LedgerStore, days: int = 30, per_day: int = 100, seed: int = 1) -> Written:
    """An 80/20 split by card with a 100% shadow; A's scores calibrated (a transaction is a
    fraud with A's score as probability), B's shifted up (drift against A's training); alerts
    labelled in 2 days, missed frauds in 20."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    event = T0 + np.arange(n) * DAY / per_day
    p = rng.beta(0.5, 6, n)
    fraud = rng.random(n) < p
    served_b = rng.random(n) < 0.2
    decisions, labels, rows = [], [], []
    for model in (A, B):
        score = (p if model == A else np.clip(p * 1.2 + 0.03, 0, 1)).astype(np.float32)
        flagged = score >= np.float32(THRESHOLDS[model])
        role = np.where(served_b == (model == B), "served", "mirror")
        rows.append((np.full(n, model), role, score, flagged))
        for i in range(n):
            decisions.append(
                Decision(
                    f"r{i}",
                    f"t{i}",
                    float(event[i]) + 0.01,
                    "ab",
                    B if served_b[i] else A,
                    str(role[i]),
                    model,
                    "1",
                    float(score[i]),
                    THRESHOLDS[model],
                    bool(flagged[i]),
                    2.0,
                    50.0,
                    f"card{i}",
                    float(event[i]),
                )  # fmt: skip
            )
    served_flag = np.where(served_b, rows[1][3], rows[0][3])
    for i in range(n):
        if served_flag[i]:
            labels.append(Label(f"t{i}", bool(fraud[i]), float(event[i]) + 2 * DAY))
        elif fraud[i]:
            labels.append(Label(f"t{i}", True, float(event[i]) + 20 * DAY, None, "chargeback"))
    store.record_decisions(decisions)
    store.upsert_labels(labels, actor="test")
    day = np.tile(np.floor(event / DAY).astype(int), 2)
    return Written(
        np.concatenate([r[0] for r in rows]),
        np.concatenate([r[1] for r in rows]),
        day,
        np.concatenate([r[2] for r in rows]),
        np.concatenate([r[3] for r in rows]),
    )


def _training_reference(seed: int = 2):
    """A's training distribution: its scores on a fresh population, FP64 like training's."""
    scores = np.random.default_rng(seed).beta(0.5, 6, 4000)
    return drift_reference(np.zeros((4000, N_FEATURES)), scores, FEATURE_NAMES)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Written]:
    url = f"sqlite:///{tmp_path_factory.mktemp('monitoring') / 'ledger.db'}"
    with open_ledger(url) as store:
        written = _fill(store)
    return url, written


def test_estimates_and_drift_equal_numpy_and_scipy_on_the_same_decisions(ledger) -> None:
    url, w = ledger
    column = _training_reference().column(SCORE_COLUMN)
    lookups: list[str] = []

    def references(name: str) -> ScoreReference:
        lookups.append(name)
        return ScoreReference(f"models:/x/{name}", "7", column)

    with open_ledger(url) as store:
        result = evaluate(parse_config(_config(url)), store, as_of=AS_OF, references=references)
    monitoring = result.monitoring
    assert monitoring is not None and sorted(lookups) == [A, B] and monitoring.notes == ()
    matured = (w.day + 1) * DAY + 30 * DAY <= AS_OF
    assert matured.any() and not matured.all()
    assert {(m.model, m.role) for m in monitoring.estimates} == {
        (m, r) for m in (A, B) for r in ("served", "mirror")
    }
    for m in monitoring.estimates:
        mine = (w.model == m.model) & (w.role == m.role)
        for got, mask in ((m.window, mine), (m.matured, mine & matured)):
            want = expected_counts(w.score[mask], w.flagged[mask])
            assert (got.flagged, got.passed) == (want.flagged, want.passed)
            assert got.flagged_score == pytest.approx(want.flagged_score, rel=1e-12)
            assert got.passed_score == pytest.approx(want.passed_score, rel=1e-12)
        assert m.estimated_precision == pytest.approx(m.matured.precision, rel=1e-12)
        assert m.window_estimated_recall == pytest.approx(m.window.recall, rel=1e-12)
        if m.role == "served":  # beside the arm's realised figures (the same matured days)
            arm = result.arm(m.model)
            assert m.realised_precision == arm.metrics.precision
            assert m.realised_recall == arm.metrics.recall
            if m.model == A:  # calibrated scores: the estimate lands by the realised figures
                for estimate, realised in (
                    (m.estimated_precision, arm.metrics.precision),
                    (m.estimated_recall, arm.metrics.recall),
                ):
                    assert realised.low - 0.05 <= estimate <= realised.high + 0.05
        else:
            assert m.realised_precision is None and m.realised_recall is None
    assert {(d.model, d.role) for d in monitoring.drift} == {
        (m, r) for m in (A, B) for r in ("served", "mirror")
    }
    for d in monitoring.drift:
        scores = w.score[(w.model == d.model) & (w.role == d.role)].astype(np.float64)
        exact = column_drift(column, scores)
        assert d.rows == scores.size == exact.rows
        assert d.psi == pytest.approx(exact.psi, rel=1e-12)  # the same bins: the same PSI
        ks = ks_2samp(column.sample, scores).statistic
        assert d.ks_at_edges <= ks + 1e-12 and d.ks_at_edges > 0  # a lower bound
        cdf_live = np.array([np.mean(scores <= e) for e in column.edges])
        cdf_ref = np.array([np.mean(np.array(column.sample) <= e) for e in column.edges])
        assert d.ks_at_edges == pytest.approx(np.max(np.abs(cdf_live - cdf_ref)), abs=1e-12)
        assert d.live_shares == pytest.approx(
            [c / scores.size for c in np.histogram(scores, [-1, *column.edges, 2])[0]], abs=0.02
        )
        assert (d.reference_uri, d.registry_version) == (f"models:/x/{d.model}", "7")
    by = {(d.model, d.role): d for d in monitoring.drift}
    assert by[(B, "mirror")].psi > by[(A, "mirror")].psi  # B's scores are shifted
    assert by[(B, "mirror")].level in ("warning", "alert")


def test_the_monitoring_section_in_report_json_text_and_html(ledger) -> None:
    url, _ = ledger
    column = _training_reference().column(SCORE_COLUMN)

    def references(name: str) -> ScoreReference:
        if name == B:
            return ScoreReference("models:/x@c", "3", None, "registered without a drift reference")
        return ScoreReference("models:/x@a", "2", column)

    with open_ledger(url) as store:
        result = evaluate(parse_config(_config(url)), store, as_of=AS_OF, references=references)
        plain = evaluate(parse_config(_config(url)), store, as_of=AS_OF)
    assert plain.monitoring is None  # a rollout's checks: no registry, no extra read
    schema = json.loads(SCHEMA_PATH.read_text())
    for evaluation in (result, plain):
        document = json.loads(json.dumps(evaluation_json(evaluation), allow_nan=False))
        jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
    document = evaluation_json(result)["monitoring"]
    assert {d["model"] for d in document["drift"]} == {A}
    assert document["notes"] == [
        f"{B}: no score drift, registered without a drift reference (models:/x@c)"
    ]
    console = Console(record=True, width=200, file=io.StringIO())
    assert result.monitoring is not None
    render_monitoring(result.monitoring, console)
    text = console.export_text()
    assert "Estimated (label-free" in text and "lower bound" in text
    assert f"{result.monitoring.drift[0].psi:.4f}" in text and "models:/x@a (v2)" in text
    page = evaluation_html(result)
    assert "Score drift: fraud-v1-baseline (served)" in page
    assert "Estimated against realised" in page


@pytest.mark.slow
def test_fraudgate_report_reads_the_references_from_the_registry(
    trained_registry, tmp_path
) -> None:
    from fraudgate.registry import Registry

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as store:
        w = _fill(store, days=20, per_day=60)
    data = _config(url, registry=trained_registry.tracking_uri)
    registry = Registry(trained_registry.tracking_uri)
    for name, uri in ((A, "champion"), (B, "challenger")):
        version, reference = registry.drift_reference(f"models:/fraud-detection@{uri}")
        loaded = registry.load(f"models:/fraud-detection@{uri}")
        assert version == loaded.version and reference == loaded.drift_reference
        lookup = registry_references(parse_config(data))(name)
        assert lookup is not None and lookup.column == reference.column(SCORE_COLUMN)
        # by the serving name's version, not by where the alias points now (a promotion moves
        # @champion to the candidate)
        assert lookup.uri == f"models:/fraud-detection/{version}"
    path = tmp_path / "fraudgate.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "report.json"
    as_of = str(T0 + 30 * DAY)
    result = CliRunner().invoke(app, ["report", "-c", str(path), "--as-of", as_of, "--json", out])
    assert result.exit_code == 0, result.output
    assert "Score drift of the window's decisions" in result.output
    document = json.loads(out.read_text())["monitoring"]
    served_a = next(d for d in document["drift"] if (d["model"], d["role"]) == (A, "served"))
    assert served_a["registry_version"] == "1"
    scores = w.score[(w.model == A) & (w.role == "served")].astype(np.float64)
    reference = registry.drift_reference("models:/fraud-detection@champion")[1]
    assert reference is not None
    assert served_a["psi"] == pytest.approx(
        column_drift(reference.column(SCORE_COLUMN), scores).psi, rel=1e-12
    )


def test_a_missing_registry_is_a_note_not_an_error(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    missing = f"sqlite:///{tmp_path / 'nothing' / 'mlflow.db'}"
    lookup = registry_references(parse_config(_config(url, registry=missing)))
    reference = lookup(A)
    assert reference is not None and reference.column is None
    assert reference.note == f"no registry at {missing}"
    assert not (tmp_path / "nothing").exists()  # not created by looking
    assert lookup("not-a-configured-model") is None


def test_a_rollup_keeps_the_closed_days_and_the_next_report_recounts_none_of_them(
    tmp_path, monkeypatch
) -> None:
    """`roll_up` reads what `evaluate` reads (both statements, the same cache signatures): after
    it, a report writes nothing to the count cache (every closed day was stored) and equals the
    report counted live; a ledger under the cache's minimum is left alone."""
    import sqlalchemy as sa

    import fraudgate.ledger.store as ledger_store
    from fraudgate.evaluation import roll_up
    from fraudgate.ledger.day_cache import DayBounds
    from fraudgate.ledger.schema import count_cache, count_cache_marks

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    column = _training_reference().column(SCORE_COLUMN)

    def references(name: str) -> ScoreReference:
        return ScoreReference(f"models:/x/{name}", "7", column)

    def report(store: LedgerStore) -> str:
        document = evaluation_json(evaluate(config, store, as_of=AS_OF, references=references))
        document.pop("generated_at")
        return json.dumps(document, sort_keys=True)

    def marks(store: LedgerStore) -> list[tuple]:
        with store._engine.connect() as conn:
            return sorted(map(tuple, conn.execute(sa.select(count_cache_marks))))

    def entries(store: LedgerStore) -> list[int]:
        with store._engine.connect() as conn:
            per_signature = (
                sa.select(sa.func.count())
                .select_from(count_cache)
                .group_by(count_cache.c.signature)
            )
            return list(conn.execute(per_signature).scalars())

    config = parse_config(_config(url))
    with open_ledger(url) as store:
        _fill(store, days=20, per_day=40)  # 1,600 decisions
        small = roll_up(config, store, AS_OF, references=references)
        assert (small.counted, small.days, marks(store)) == (False, 0, [])
        live = report(store)
        monkeypatch.setattr(ledger_store, "MIN_DECISIONS", 1_000)
        rolled = roll_up(config, store, AS_OF, references=references)
        # the evaluation's counts keep the days wholly on one side of the maturity cut (days 14
        # and 15 are not); the monitoring rows (no maturity) keep all 20
        bounds = DayBounds(AS_OF, maturity_s=30 * DAY)
        first = int(T0 // DAY)
        closed = [d for d in range(first, first + 20) if bounds.matured(d) is not None]
        assert rolled.counted and rolled.days == 20 and len(closed) == 18
        assert sorted(entries(store)) == [18, 20]
        assert len(marks(store)) == 3  # the experiment's counts, the monitoring rows, the units
        before = marks(store)
        assert report(store) == live
        assert marks(store) == before  # nothing left to count into the cache: all closed days kept
