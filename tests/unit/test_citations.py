"""The project cites only documents inside the repository, and its citations resolve.

Code, tests, benchmarks and docs explain a rule by pointing at the page that
states it: `docs/semantics.md, "Late usage"`. Such a pointer is only worth
something if a reader of a fresh clone can follow it. So:

- nothing names the design notes kept outside the repository (the word
  spelled in `OUTSIDE_WORD` below) or a path outside it (`../shared`, an
  absolute path of the machine the code was written on);
- every `docs/<page>.md` and `specs/<file>` named exists in the repository;
- every `docs/<page>.md, "<Section>"` (also `docs/<page>.md ("<Section>")` and
  `docs/<page>.md "<Section>"`) names a heading of that page, word for word.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Spelled in two parts so that this file does not cite what it forbids.
OUTSIDE_WORD = "DES" + "IGN"
OUTSIDE = re.compile(r"\b" + OUTSIDE_WORD + r"\b|\.\./shared\b|/work/")

# Files exempt from the checks below (none: every file cites inside the repository).
PENDING: set[str] = set()

# Pages that code already names and that are being written in parallel; each entry
# goes when its page lands.
NOT_YET_WRITTEN: set[str] = set()

# A path inside the repository that a text may name.
CITED_PATH = re.compile(r"(?<![\w./-])((?:docs|specs)/[\w./-]*\w\.(?:md|ya?ml))")
# docs/<page>.md followed by a quoted section title, possibly broken over lines of
# a comment or a docstring.
CITED_SECTION = re.compile(r'(?<![\w./-])docs/([\w-]+\.md)(?:,\s*|\s*\(\s*|\s+)"([^"]+)"')
FENCE = re.compile(r"^(`{3,}|~{3,})")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _texts() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for top in ("src", "tests", "bench"):
        files += sorted((ROOT / top).rglob("*.py"))
    return [f for f in files if f.resolve() != Path(__file__).resolve()]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _checked() -> list[Path]:
    return [f for f in _texts() if _rel(f) not in PENDING]


def headings(page: Path) -> set[str]:
    """The titles of a Markdown page's headings, outside fenced blocks."""
    found: set[str] = set()
    fence: str | None = None
    for line in page.read_text(encoding="utf-8").splitlines():
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.startswith(fence):
                fence = None
            continue
        if fence is None and (h := HEADING.match(line)):
            found.add(h.group(1))
    return found


def _joined(title: str) -> str:
    """A title broken over comment or docstring lines, as one line."""
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", title).strip()


def outside_citations(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)]


def unresolved_paths(text: str) -> list[str]:
    return sorted({p for p in CITED_PATH.findall(text)
                   if not (ROOT / p).exists() and p not in NOT_YET_WRITTEN})


def unresolved_sections(text: str) -> list[str]:
    bad = []
    for page, title in CITED_SECTION.findall(text):
        target = ROOT / "docs" / page
        title = _joined(title)
        if not target.is_file() or title not in headings(target):
            bad.append(f'docs/{page}, "{title}"')
    return bad


def test_nothing_cites_a_document_outside_the_repository():
    found = {_rel(f): hits for f in _checked()
             if (hits := outside_citations(f.read_text(encoding="utf-8")))}
    assert found == {}, ("cite the page of docs/ that explains it instead: "
                         f"{found}")


def test_every_cited_path_exists_in_the_repository():
    found = {_rel(f): bad for f in _checked()
             if (bad := unresolved_paths(f.read_text(encoding="utf-8")))}
    assert found == {}


def test_every_cited_section_is_a_heading_of_its_page():
    found = {_rel(f): bad for f in _checked()
             if (bad := unresolved_sections(f.read_text(encoding="utf-8")))}
    assert found == {}


def test_pending_files_exist():
    # An entry for a file that was renamed or removed would silently skip nothing;
    # the list shrinks as the edits it waits for land.
    missing = sorted(p for p in PENDING if not (ROOT / p).is_file())
    assert missing == []


@pytest.mark.parametrize("text, expected", [
    (f"rated in its cycle ({OUTSIDE_WORD} 1.5)", 1),
    (f"see {OUTSIDE_WORD}.md section 3", 1),
    ("the contract is in ../shared/x.md", 1),
    ("a design of its own; no citation", 0),
])
def test_an_outside_citation_is_found(text, expected):
    assert len(outside_citations(text)) == expected


def test_a_section_citation_is_checked_against_the_headings():
    assert unresolved_sections('(docs/semantics.md, "Late usage")') == []
    assert unresolved_sections('# docs/semantics.md ("Cycles and rollover\n# at the '
                               'boundary instant")') == []
    assert unresolved_sections('docs/semantics.md, "Late use"') == [
        'docs/semantics.md, "Late use"']
    assert unresolved_sections('docs/nowhere.md, "Late usage"') == [
        'docs/nowhere.md, "Late usage"']
    assert unresolved_paths("see docs/nowhere.md and docs/semantics.md") == ["docs/nowhere.md"]
