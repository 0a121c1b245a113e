"""Deployment artefacts written from the one config file, so what runs and what watches it cannot
drift apart: `fraudgate.deploy.kubernetes` (Seldon Core v2, KServe and fraudgate's own manifests),
`fraudgate.deploy.prometheus` (alerting rules, plain and as a ``PrometheusRule``) and
`fraudgate.deploy.grafana` (the dashboard), sharing `fraudgate.deploy.promql`. Nothing here runs a
model or talks to a cluster: each function returns data the CLI writes out.

Import the modules themselves; this package loads nothing.
"""
