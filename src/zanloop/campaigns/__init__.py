"""Pay-then-like campaigns (C1-C6): rules over payments, likes and shares, with prompts,
rewards and their reversal."""
