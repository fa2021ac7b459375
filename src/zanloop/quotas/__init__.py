"""Counted limits (stock, budgets, per-user caps) taken and given back atomically."""
