"""Coupons (K1-K4): templates, wallets, redemption at checkout, restoration on refund."""
