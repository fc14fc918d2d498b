"""eSIM: orders of profiles for lines, the profile inventory, and the SM-DP+'s reports.

Keeps: a profile is on at most one order; a state moves only along the
lifecycle of carryover.domain.esim; every report the SM-DP+ sends, accepted or
refused, stays in the history.
"""
