"""Double-entry ledger (X3): accounts, transfers, entries, holds and reversals."""
