"""The adapters layer: the outside world as values the engine can use.

CDR files in (docs/ingest.md), plan and scenario files (docs/plan-files.md,
docs/scenarios.md), the vendor's eSIM inventory CSV, the ES2+ client of the SM-DP+
and the SM-DP+ emulator used in development and tests (docs/esim.md).
"""
