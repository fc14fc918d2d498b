"""Errors services return to their callers: a one-line reason for the operator."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out (unknown line, bad instant, ...)."""


class NotFound(ServiceError):
    """An account, line or plan that does not exist."""


class Duplicate(ServiceError):
    """A usage event whose id was already counted; it is not counted again."""


class Conflict(ServiceError):
    """Something that already exists (an account name, an MSISDN, a line id)."""


class Forbidden(ServiceError):
    """Something the caller's key may not do (a subscriber back-dating, or choosing a
    plan the operator does not offer for self-service)."""
