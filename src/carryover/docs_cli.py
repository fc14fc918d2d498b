"""Generate docs/cli.md from the CLI's own --help, so the reference cannot drift.

`python -m carryover.docs_cli > docs/cli.md` rewrites it (`make docs`); a test
regenerates it and fails when the committed file differs.
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from carryover.cli import app

# A fixed width and no colour make the output the same on every machine.
ENV = {"COLUMNS": "100", "TERMINAL_WIDTH": "100", "NO_COLOR": "1", "TERM": "dumb"}


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    # Typer builds click-style groups (its own vendored click in recent releases), so
    # look for sub-commands rather than a class.
    if getattr(group, "commands", None):
        for name in sorted(group.commands):
            paths.extend(command_paths(group.commands[name], (*prefix, name)))
    return paths


def render() -> str:
    runner = CliRunner()
    root = typer.main.get_command(app)
    parts = [
        "# CLI reference",
        "",
        "Generated from `carryover --help` by `make docs` (`python -m carryover.docs_cli`);",
        "a test fails when this file and the CLI drift apart. Every command that prints",
        "results takes `--json`; bad input exits with status 2 and one line per problem.",
        "",
    ]
    for path in command_paths(root):
        result = runner.invoke(app, [*path, "--help"], env=ENV, terminal_width=100)
        title = " ".join(("carryover", *path))
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        parts += [f"## `{title}`", "", "```text", text.strip("\n"), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
