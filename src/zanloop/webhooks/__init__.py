"""Outbound webhooks (X4) per the Standard Webhooks specification."""
