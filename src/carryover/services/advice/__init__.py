"""Advice: what a subscriber could do to make the most of rollover (docs/advice.md).

One read of a line's book; the rules are in carryover.domain.advice.
"""
