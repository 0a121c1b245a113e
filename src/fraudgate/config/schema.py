"""The typed configuration records (`FraudgateConfig` and its sections) and their defaults.

Records only: no parsing here (see `fraudgate.config.loading`). Each default is a named constant
so the loader, the demo's file and the docs agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudgate.config.alerts import AlertsConfig, RuleMetadata

if TYPE_CHECKING:
    from fraudgate.analysis.cost import CostModel
    from fraudgate.analysis.decision import DecisionPolicy
    from fraudgate.config.kubernetes import KubernetesConfig
    from fraudgate.experiments import ExperimentSpec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# connection bounds (both transports; see fraudgate.serving.connection_limits)
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
DEFAULT_MAX_CONCURRENT_STREAMS = 100
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_WAIT_MS = 1.0
MODEL_MANAGEMENT = ("admin", "off")
DEFAULT_MODEL_MANAGEMENT = "admin"
DEFAULT_MAX_EXTRA_MODELS = 8

DEFAULT_WEIGHTS_POLL_S = 1.0
DEFAULT_MAX_LAG_S = 30.0  # ledger.max_lag_s: unready when shipping falls further behind
DEFAULT_COMMIT_TIMEOUT_MS = 2000  # ledger.commit_timeout_ms: acknowledge: commit's bounded wait
DEFAULT_FEEDBACK_MAX_LABELS = 10_000  # labels per POST /feedback (clients send batches)
ACKNOWLEDGE = ("journal", "commit")
SHIPPERS = ("child", "external")
ADMIN_TOKEN_ENV = "FRAUDGATE_ADMIN_TOKEN"
# interfaces a server binds to that a client cannot connect to: it uses the loopback instead
_ANY_INTERFACE = ("0.0.0.0", "::")


# analysis: (the evaluation's settings; see AnalysisConfig)
DEFAULT_MATURITY_DAYS = 90.0  # chargebacks arrive over weeks, with a tail past 90 days
DEFAULT_ALPHA = 0.05
PRIMARY_METRICS = ("recall", "value_detection")
DEFAULT_PLANNED_FRAUDS = 500  # the confidence sequence is narrowest near this many frauds
DEFAULT_PLANNED_TRANSACTIONS = 100_000  # the same for the alert-rate sequence
DESIGNS = ("auto", "paired", "split")

# monitoring: (the server's background gauges; see MonitoringConfig)
DEFAULT_TRAFFIC_WINDOW_S = 300.0  # observed traffic share and estimated performance
DEFAULT_LABEL_WINDOW_DAYS = 30.0  # label-joined precision / recall and label coverage
DEFAULT_LEDGER_REFRESH_S = 30.0
DEFAULT_ROLLUP_INTERVAL_S = 3600.0
DEFAULT_REFRESH_S = 5.0
DEFAULT_DRIFT_REFRESH_S = 60.0
DEFAULT_DRIFT_SAMPLE_ROWS = 10_000
DEFAULT_DRIFT_MIN_ROWS = 500


# rollout: (the ramp's plan; see RolloutConfig)
ROLLOUT_PROMOTE = ("on_primary", "at_end")
DEFAULT_ROLLOUT_WEIGHTS = (0, 5, 20, 50, 100)
DEFAULT_STEP_MIN_DURATION_S = 600.0
DEFAULT_STEP_MIN_SAMPLE = 1000
DEFAULT_CHECK_INTERVAL_S = 10.0
MAX_ROLLOUT_STEPS = 20


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the field, expected and received."""


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    uri: str
    threshold: float | None = None
    runtime: str = "auto"
    batching: BatchingConfig = field(default_factory=BatchingConfig)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    # repository load/unload: "admin" (needs the auth token; refused without one) or "off"
    model_management: str = DEFAULT_MODEL_MANAGEMENT
    # names outside the config the repository holds at most (loaded by name + parameters.uri)
    max_extra_models: int = DEFAULT_MAX_EXTRA_MODELS
    # request head (REST) / metadata (gRPC) bytes, and REST header count
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_headers: int = DEFAULT_MAX_HEADERS
    # a connection must send its request head (REST) / HTTP/2 preface (gRPC) within this
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S  # keep-alive connections with no request
    # open connections per transport; None: 1000, or fewer if the file limit allows fewer
    max_connections: int | None = None
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS  # gRPC streams per connection

    @property
    def client_url(self) -> str:
        """The HTTP URL a client on this machine reaches the server at (0.0.0.0 -> loopback)."""
        host = DEFAULT_HOST if self.host in _ANY_INTERFACE else self.host
        return f"http://{host}:{self.http_port}"


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Where decisions and labels are recorded (see `fraudgate.ledger.open_ledger`)."""

    url: str
    enabled: bool = True
    weights_poll_s: float = DEFAULT_WEIGHTS_POLL_S
    # journal: a served decision is acknowledged once appended to this process's journal file
    # (survives the process being killed) and `fraudgate ledger ship` moves it into the store;
    # commit: acknowledged once committed in the store (survives a power loss on PostgreSQL)
    acknowledge: str = "journal"
    journal_dir: str = "ledger-journal"
    journal_fsync: bool = False  # fdatasync every append: survives a power loss too
    shipper: str = "child"  # child: `fraudgate serve` runs the shipper; external: a sidecar does
    # unready (503) once the oldest unshipped journaled decision is older than this
    max_lag_s: float = DEFAULT_MAX_LAG_S
    # acknowledge: commit: a request whose commit takes longer gets 503 (and readiness turns 503)
    commit_timeout_ms: int = DEFAULT_COMMIT_TIMEOUT_MS
    feedback_max_labels: int = DEFAULT_FEEDBACK_MAX_LABELS  # more in one request: 413


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Bearer-token auth. ``token`` None: feedback/admin endpoints are open (not recommended)
    and model management (repository load/unload) is refused."""

    token: str | None = None
    token_env: str | None = None
    inference: bool = False

    @property
    def enabled(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class GuardrailsConfig:
    """The fast guardrails (no labels needed) and the precision floor (see
    `fraudgate.analysis.decision`). None disables a limit."""

    srm_p: float = 0.001  # sample ratio mismatch flagged below this p-value
    max_alert_rate_increase: float = 0.25  # relative: 0.25 = 25% more alerts than the champion
    precision_floor: float = 0.05
    min_labelled_alerts: int = 30  # the floor is judged from this many labelled alerts
    max_error_rate: float | None = 0.01
    max_p99_latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class CostConfig:
    """Prices of the outcomes (`fraudgate.analysis.cost.CostModel`'s fields) and the volume.

    ``transactions_per_day`` None: the observed volume (transactions in the window / days).
    """

    loss_share: float = 1.0
    loss_per_fraud: float = 0.0
    investigation_cost: float = 25.0
    friction_cost: float = 0.0
    transactions_per_day: float | None = None

    def cost_model(self) -> CostModel:
        from fraudgate.analysis.cost import CostModel

        return CostModel(
            self.loss_share, self.loss_per_fraud, self.investigation_cost, self.friction_cost
        )


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """How `fraudgate report` and the demo evaluate the experiment (``analysis:`` section).

    - ``champion`` / ``challenger``: model names (None: the experiment's default candidate,
      else its heaviest arm, is the champion; the other candidate the challenger).
    - ``maturity_days``: an unlabelled transaction counts as legitimate only once this old;
      the primary metric reads only event days this old (their labels are complete).
    - ``alpha``; ``primary_metric``: ``recall`` or ``value_detection`` (fraud amount caught).
    - ``design``: ``paired`` (the shadow: same transactions), ``split`` (the arms), or
      ``auto`` (paired when both models scored the same transactions).
    - ``planned_frauds`` / ``planned_transactions``: the confidence sequences' planning sizes.
    - ``minimum_effect``, ``power``: for the expected days to a decision and the power table.
    - ``max_days``, ``max_frauds``: STOP once reached with no detectable difference.
    """

    champion: str | None = None
    challenger: str | None = None
    maturity_days: float = DEFAULT_MATURITY_DAYS
    alpha: float = DEFAULT_ALPHA
    primary_metric: str = "recall"
    design: str = "auto"
    planned_frauds: int = DEFAULT_PLANNED_FRAUDS
    planned_transactions: int = DEFAULT_PLANNED_TRANSACTIONS
    minimum_effect: float = 0.02
    power: float = 0.8
    max_days: float = 60.0
    max_frauds: int | None = None
    guardrails: GuardrailsConfig = field(default_factory=GuardrailsConfig)
    cost: CostConfig = field(default_factory=CostConfig)

    @property
    def maturity_s(self) -> float:
        return self.maturity_days * 86_400.0

    def decision_policy(self) -> DecisionPolicy:
        from fraudgate.analysis.decision import DecisionPolicy

        g = self.guardrails
        return DecisionPolicy(
            max_alert_rate_increase=g.max_alert_rate_increase,
            precision_floor=g.precision_floor,
            min_labelled_alerts=g.min_labelled_alerts,
            max_error_rate=g.max_error_rate,
            max_p99_latency_ms=g.max_p99_latency_ms,
            max_days=self.max_days,
            max_frauds=self.max_frauds,
            minimum_effect=self.minimum_effect,
            power=self.power,
        )


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """One step of a ramp: the challenger's share of the traffic (0 = shadow only), held at
    least ``min_duration_s`` and until the step recorded ``min_sample`` decisions."""

    weight: int
    min_duration_s: float = DEFAULT_STEP_MIN_DURATION_S
    min_sample: int = DEFAULT_STEP_MIN_SAMPLE


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """How `fraudgate rollout` ramps the challenger (``rollout:`` section).

    - ``steps``: challenger weights in increasing order, each with its minimum duration/sample.
    - ``check_interval_s``: how often the guardrails are evaluated (and so the longest a breach
      waits before traffic goes back to the champion, plus the replicas' weight poll).
    - ``promote``: ``on_primary`` promotes only when the primary metric's always-valid result
      says PROMOTE (holding at the last step until then); ``at_end`` promotes once the last step
      has passed its minimum with no guardrail objecting.
    - ``servers``: the replicas whose ``/metrics`` give the error rate (default: the config's
      server).
    """

    steps: tuple[RolloutStep, ...] = tuple(RolloutStep(w) for w in DEFAULT_ROLLOUT_WEIGHTS)
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S
    promote: str = "on_primary"
    servers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The plan as recorded with a rollout (a resumed rollout must have the same one)."""
        return {
            "steps": [
                {"weight": s.weight, "min_duration_s": s.min_duration_s, "min_sample": s.min_sample}
                for s in self.steps
            ],
            "promote": self.promote,
        }


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    """What the server measures in the background for ``/metrics`` (``monitoring:`` section).

    - ``traffic_window_s``: the window of the observed traffic share per arm and of the
      label-free (estimated) precision and recall.
    - ``label_window_days``: the window (by event time) of the label-joined precision, recall,
      pending decisions and label coverage, read from the ledger every ``ledger_refresh_s``.
    - ``rollup_interval_s``: how often the server counts the experiment's closed days into the
      ledger's count cache for the report (`fraudgate.evaluation.roll_up`; 0: never).
    - ``refresh_s``: how often the counters are read (and the kept rows moved to the rings);
      ``drift_refresh_s``: how often the drift is recomputed, when new rows came (it reads
      every column of every ring: the monitoring's largest cost).
    - ``drift_sample_rows``: the most recent scored rows per model that drift is computed on
      (against the reference stored with the model version); below ``drift_min_rows`` none.
    - ``psi_warning`` / ``psi_alert``: PSI levels (moderate / major shift), 0.1 / 0.25; the
      drift alert fires above ``psi_alert``.
    - ``alerts``: the exported Prometheus alerts' thresholds, windows and ``for``;
      ``rule``: the PrometheusRule's metadata (`fraudgate.config.alerts`).
    - ``enabled`` (default true): false drops the drift sampling on the hot path, the
      background refresh and its gauges (traffic share, estimated and label-joined performance,
      drift) from ``/metrics``; the per-model counters stay. For a server whose gauges nobody
      scrapes, and to measure what the monitoring costs (bench/instructions.py).
    """

    enabled: bool = True
    traffic_window_s: float = DEFAULT_TRAFFIC_WINDOW_S
    label_window_days: float = DEFAULT_LABEL_WINDOW_DAYS
    ledger_refresh_s: float = DEFAULT_LEDGER_REFRESH_S
    rollup_interval_s: float = DEFAULT_ROLLUP_INTERVAL_S
    refresh_s: float = DEFAULT_REFRESH_S
    drift_refresh_s: float = DEFAULT_DRIFT_REFRESH_S
    drift_sample_rows: int = DEFAULT_DRIFT_SAMPLE_ROWS
    drift_min_rows: int = DEFAULT_DRIFT_MIN_ROWS
    psi_warning: float = 0.1
    psi_alert: float = 0.25
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    rule: RuleMetadata = field(default_factory=RuleMetadata)

    @property
    def label_window_s(self) -> float:
        return self.label_window_days * 86_400.0


@dataclass(frozen=True, slots=True)
class FraudgateConfig:
    models: tuple[ModelConfig, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    registry: str | None = None
    experiment: dict[str, Any] | None = None  # the raw section (see experiment_spec)
    ledger: dict[str, Any] | None = None  # the raw section (see ledger_config)
    path: Path | None = None
    experiment_spec: ExperimentSpec | None = None
    ledger_config: LedgerConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    # the ``kubernetes:`` section (`fraudgate export kubernetes`); the loader always sets it
    kubernetes: KubernetesConfig | None = None
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    @property
    def ledger_enabled(self) -> bool:
        return self.ledger_config is not None and self.ledger_config.enabled

    @property
    def tracking_uri(self) -> str | None:
        """The configured registry, else ``MLFLOW_TRACKING_URI`` (None when neither is set)."""
        return self.registry or os.environ.get("MLFLOW_TRACKING_URI") or None

    def resolved_tracking_uri(self) -> str:
        """Where models load from: `tracking_uri`, else the embedded SQLite store next to the
        config file (the working directory without one)."""
        from fraudgate.registry import resolve_tracking_uri

        workdir = self.path.parent if self.path is not None else Path.cwd()
        return resolve_tracking_uri(self.registry, workdir)

    def model(self, name: str) -> ModelConfig:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)
