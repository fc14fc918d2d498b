"""Validate Nchf_ConvergedCharging messages against the 3GPP OpenAPI schemas.

The schemas are the published YAML of TS 32.291 (and the files it `$ref`s),
vendored in `specs/3gpp/` so this works on a fresh clone. An OpenAPI 3.0 schema
object is JSON Schema draft 4 (wright-00, also called draft 5) plus a few
keywords of its own; of those only `nullable` changes what is valid (`null` is
allowed beside the declared `type`), so the validator is draft 4 with `type`
and `enum` taught `nullable`. `$ref`s across files resolve through a
`referencing.Registry` whose `retrieve` reads the YAML from that folder (never
the network). Format `date-time` is checked as RFC 3339 (a `T`, seconds and an
offset or `Z`); other formats are not checked.

    validate("ChargingDataRequest", body)   # AssertionError: "$.invocationTimeStamp: ..."
    validate_problem(body)                  # TS29571_CommonData ProblemDetails
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parents[1] / "specs" / "3gpp"
NCHF = "TS32291_Nchf_ConvergedCharging.yaml"
COMMON = "TS29571_CommonData.yaml"
MAX_ERRORS = 10  # enough to see a pattern; a broken body can raise hundreds
MAX_REASON = 300

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _base_uri() -> str:
    return SPECS.as_uri() + "/"


@cache
def _document(name: str) -> dict:
    path = SPECS / name
    if path.parent != SPECS or not path.is_file():
        raise FileNotFoundError(f"{name} is not in {SPECS}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _retrieve(uri: str) -> Resource:
    """The registry's loader: a file: URI inside specs/3gpp/, parsed as YAML."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise NoSuchResource(ref=uri)
    try:
        return DRAFT4.create_resource(_document(Path(unquote(parts.path)).name))
    except FileNotFoundError:
        raise NoSuchResource(ref=uri) from None


def _nullable(keyword):
    """Wrap a draft 4 keyword so `null` passes where the schema says `nullable: true`."""

    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from keyword(validator, value, instance, schema)

    return check


def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True  # formats constrain strings only; `type` covers the rest
    if not _RFC3339.match(instance):
        return False
    try:  # the regex admits 2026-13-45T25:61:00Z: let the calendar decide
        datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


OpenApi30Validator = validators.extend(
    Draft4Validator,
    {"type": _nullable(Draft4Validator.VALIDATORS["type"]),
     "enum": _nullable(Draft4Validator.VALIDATORS["enum"])},
)


@cache
def _validator(document: str, schema_name: str):
    schemas = _document(document).get("components", {}).get("schemas", {})
    if schema_name not in schemas:
        raise KeyError(f"{document} has no components/schemas/{schema_name}")
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    registry = Registry(retrieve=_retrieve)
    ref = f"{_base_uri()}{document}#/components/schemas/{schema_name}"
    return OpenApi30Validator({"$ref": ref}, registry=registry, format_checker=checker)


def _reason(error: ValidationError) -> str:
    text = error.message
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON] + "..."
    if error.context:  # anyOf / oneOf: say which branch came closest and why it failed
        closest = best_match(error.context)
        text += f" (closest: {closest.json_path}: {_reason(closest)})"
    return text


def errors(document: str, schema_name: str, instance: object) -> list[str]:
    """Every way `instance` breaks `document#/components/schemas/schema_name`, by JSON path."""
    found = sorted(_validator(document, schema_name).iter_errors(instance),
                   key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{e.json_path}: {_reason(e)}" for e in found]


def _check(document: str, schema_name: str, instance: object) -> None:
    problems = errors(document, schema_name, instance)
    if problems:
        shown = "\n  ".join(problems[:MAX_ERRORS])
        extra = len(problems) - MAX_ERRORS
        more = f"\n  ... and {extra} more" if extra > 0 else ""
        raise AssertionError(f"not a valid {schema_name} ({len(problems)} errors):\n  "
                             f"{shown}{more}")


def validate(schema_name: str, instance: object) -> None:
    """Raise AssertionError unless `instance` is a valid TS 32.291 `schema_name`."""
    _check(NCHF, schema_name, instance)


def validate_problem(instance: object) -> None:
    """Raise AssertionError unless `instance` is a valid TS 29.571 ProblemDetails."""
    _check(COMMON, "ProblemDetails", instance)
