"""YAML as plan and scenario files are read: UTF-8, safe types only, and every key once
per mapping.

PyYAML keeps the last of two equal keys silently, so a plan that says
`data: 10GB` and later `data: 1GB` would mean 1GB without a word. YAML itself
requires keys to be unique; a duplicate is refused here as a YAMLError whose
mark is the duplicate's line, naming the key and where it was first given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<) are expanded first, as PyYAML does
            first: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # PyYAML's own error for an unhashable key follows
                if key in first:
                    raise ConstructorError(
                        None, None,
                        f"duplicate key {key!r} (first given on line "
                        f"{first[key].start_mark.line + 1})",
                        key_node.start_mark)
                first[key] = key_node
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """yaml.safe_load, but a key given twice in one mapping is a YAMLError."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def read_text(path: Path, error: Callable[[list[str]], Exception]) -> str:
    """A file's text as UTF-8; one that cannot be read raises `error([problem])`, the
    problem naming the file and why (the OS's reason, or the first byte that is not
    UTF-8 and where)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error([f"{path}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise error([f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                     f"offset {exc.start})"]) from exc
