"""The domain layer: the engine's rules as pure values and functions.

Units, cycles, plans and their versions, buckets, the account book and its fold,
rollover, rating, quota, statements, eSIM identifiers and states
(docs/semantics.md states the rules). Standard library and numpy only: no I/O, no
clock (every instant is passed in), no SQLAlchemy.
"""
