"""Prometheus metrics, one registry for the process."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "zanloop_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "zanloop_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
NOTIFICATIONS = Counter(
    "zanloop_payment_notifications_total", "Provider notifications received", ["outcome"]
)
JOBS = Counter("zanloop_jobs_total", "Jobs run", ["kind", "outcome"])
WEBHOOK_DELIVERIES = Counter(
    "zanloop_webhook_deliveries_total", "Outbound webhook delivery attempts", ["outcome"]
)
LEDGER_TRANSFERS = Counter("zanloop_ledger_transfers_total", "Ledger transfers posted", ["kind"])
RISK_DECISIONS = Counter("zanloop_risk_decisions_total", "Risk decisions", ["action", "verdict"])
RISK_DECIDE_LATENCY = Histogram(
    "zanloop_risk_decide_seconds",
    "Time to decide on one action, counters and log row included",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
RISK_REVIEWS = Counter("zanloop_risk_reviews_total", "Risk reviews by outcome", ["outcome"])
