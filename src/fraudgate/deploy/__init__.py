"""Deployment artefacts written from the one config file: Kubernetes manifests (Seldon Core v2,
KServe, fraudgate itself), Prometheus rules and the Grafana dashboard. Nothing here runs a model
or talks to a cluster: each function returns data the CLI writes out."""
