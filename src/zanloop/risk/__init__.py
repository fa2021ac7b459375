"""Risk control: one decision point (``risk.decide``) for every pin, reward and pay-later
action, online rules over sliding-window counters, block and allow lists, and a review queue
that holds the effect of a doubtful action in the ledger until an analyst decides."""
