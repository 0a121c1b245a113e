"""Experiments: the spec (Seldon Core v2 Experiment semantics), sticky routing, live weights.

A pure library: no I/O, no HTTP. The dataplane builds one :class:`ExperimentState` from the
``experiment:`` section of the config, asks :meth:`ExperimentState.should_route` whether a
request goes through the experiment, extracts the key with :func:`extract_routing_key`, and
calls :meth:`ExperimentState.route`.
"""

from fraudgate.experiments.router import (
    InvalidRoutingKey,
    RouteDecision,
    Router,
    RoutingTable,
    extract_routing_key,
    key_hash,
    should_route,
)
from fraudgate.experiments.seldon import seldon_export_notes, to_seldon_experiment
from fraudgate.experiments.spec import (
    Candidate,
    ExperimentConfigError,
    ExperimentSpec,
    Mirror,
    RoutingConfig,
    split_versioned_name,
)
from fraudgate.experiments.state import ExperimentState
from fraudgate.weights import WeightChange

__all__ = [
    "Candidate",
    "ExperimentConfigError",
    "ExperimentSpec",
    "ExperimentState",
    "InvalidRoutingKey",
    "Mirror",
    "RouteDecision",
    "Router",
    "RoutingConfig",
    "RoutingTable",
    "WeightChange",
    "extract_routing_key",
    "key_hash",
    "seldon_export_notes",
    "should_route",
    "split_versioned_name",
    "to_seldon_experiment",
]
