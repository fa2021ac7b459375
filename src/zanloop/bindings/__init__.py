"""Payment-account binding (P2): a user binds the WeChat Pay account (openid) that pays for
pins and pay-later services; paying needs a binding, and risk control reads whether the payer
is real-name verified."""
