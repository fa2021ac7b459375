"""Durable jobs (X5): written in the same transaction as the change, run after commit."""
