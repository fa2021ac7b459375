"""The built-in WeChat Pay v3 sandbox: a local stand-in for the provider.

It keeps its own platform RSA key pair and per-merchant APIv3 keys, holds its own view of orders
and refunds, and delivers notifications the way WeChat Pay does: signed headers, an AES-256-GCM
encrypted ``resource``, and WeChat's retry schedule (compressible for tests and demos).
Its service never calls the payments service: notifications reach zanloop only over HTTP,
like the real provider's; only its buyer-facing routes look up which sandbox merchant a tenant is.
"""
