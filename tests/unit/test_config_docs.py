"""docs/configuration.md documents every setting, under the name users type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carryover.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def env_var(field: str) -> str:
    return f"{Settings.model_config['env_prefix']}{field.upper()}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    row = next((line for line in text.splitlines()
                if line.startswith(f"| `{field}` |")), None)
    assert row is not None, f"docs/configuration.md has no table row for `{field}`"
    assert f"`{env_var(field)}`" in row, f"row for `{field}` lacks `{env_var(field)}`"


def test_documented_defaults_match_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    for field, info in Settings.model_fields.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{field}` |"))
        documented = row.split("|")[3].strip().strip("`")
        default = info.default
        if isinstance(default, bool):
            expected = str(default).lower()
        elif isinstance(default, float) and default.is_integer():
            expected = str(int(default))
        else:
            expected = str(default)
        assert documented == expected, f"`{field}` default: doc {documented}, code {expected}"


def test_no_undocumented_rows() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \| `CARRYOVER_", text, flags=re.M))
    assert documented == set(Settings.model_fields)
