"""Scenarios: the demo's three months of usage, and scenario files run in memory."""
