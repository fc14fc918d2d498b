"""Ledger: accounts, lines, plans and every change or read of an account's book.

Keeps: one use case, one unit of work; a read commits nothing in the future;
an instant outside the account's window is refused before anything is read
(time_window).
"""
