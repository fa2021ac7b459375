"""Tenants and API keys (X1)."""
