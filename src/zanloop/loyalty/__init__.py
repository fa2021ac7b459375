"""The points programme (L1-L6): earning on the shared rules engine, lots with expiry, tiers,
tasks, redemption and the programme's economics."""
