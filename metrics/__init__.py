"""Metrics: Outcomes into Locust events, the per-request log and the results folder."""
