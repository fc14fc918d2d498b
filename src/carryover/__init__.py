"""carryover: exact balances for eSIM mobile plans."""
