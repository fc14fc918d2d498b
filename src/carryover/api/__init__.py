"""The HTTP layer: the REST API (docs/api.md), Nchf charging for the 5G core
(docs/nchf.md) and the SM-DP+'s ES2+ callbacks (docs/esim.md), under FastAPI.

Thin like the CLI: a handler parses the request, calls a service and renders its
answer; no rule of the engine is decided here.
"""
