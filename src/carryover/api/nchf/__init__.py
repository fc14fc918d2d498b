"""Nchf_ConvergedCharging (3GPP TS 32.291): the CHF a 5G core's SMF talks to.

`routes` holds the service operations (create, update, release) and their
models; `fast_path` answers the ordinary case of each without FastAPI's routing
and validation layers, with the same answers (docs/nchf.md)."""
