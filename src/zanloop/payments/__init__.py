"""Payments (X2): orders, refunds and verified provider notifications.

Payments never imports the features that sell through it: it publishes ``payment.*`` and
``refund.*`` events and they subscribe.
"""
