"""Deployment artefacts generated from the one config, so what runs and what watches it cannot
drift apart: `fraudgate.deploy.prometheus` (alerting rules, plain and as a ``PrometheusRule``),
`fraudgate.deploy.grafana` (the dashboard), sharing `fraudgate.deploy.promql`.

Import the modules themselves; this package loads nothing.
"""
