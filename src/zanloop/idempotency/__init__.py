"""Idempotency-Key for API writes (IETF httpapi-idempotency-key-header draft semantics)."""
