"""Every shell example of README.md and docs/*.md runs and prints what its page shows.

The rules a page follows are in tests/docs/runner.py. A new page, or a new
block on a page, is picked up without touching this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.docs import runner

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_examples_run(page, tmp_path):
    blocks = runner.parse(page.read_text(encoding="utf-8"), _name(page))
    if not any(b.commands for b in blocks):
        return  # nothing to run: every block is text, data or marked not run
    results = runner.run_page(blocks, tmp_path, bin_dir=BIN, repo=REPO)
    failures = [why for r in results if (why := runner.check(r))]
    assert not failures, f"{_name(page)}:\n" + "\n\n".join(failures)


def test_not_run_blocks_are_only_the_declared_ones():
    """The shell blocks that are not run, with their reasons: a new one shows up here."""
    skipped: dict[str, int] = {}
    for page in PAGES:
        for b in runner.parse(page.read_text(encoding="utf-8"), _name(page)):
            if b.not_run and b.language in (runner.SHELL_LANGUAGES | {"console"}):
                skipped[_name(page)] = skipped.get(_name(page), 0) + 1
    assert skipped == NOT_RUN


# How many shell blocks of a page are not run. Keep this short: each is a block
# a reader cannot try here (a remote host, minutes of benchmark, the commands
# that build the virtualenv in the first place); its reason is on the page.
NOT_RUN = {
    "README.md": 1,              # make demo / make test
    "docs/configuration.md": 1,  # createdb on a PostgreSQL host
    "docs/esim.md": 1,           # the emulator flow: tests/e2e/test_cli_esim.py
    "docs/performance.md": 4,    # benchmarks
}
