"""The browser tier: Playwright driving the Chromium of Debian's `chromium` package.

Playwright's own browser download cannot work on a machine with no network, so the
tests launch the system executable (/usr/bin/chromium, or `chromium` on PATH). Where
none is installed and the tests run as root on a system with apt, the set-up installs
the package once (a file lock keeps the pytest-xdist workers from running apt at the
same time) and says so on stderr. Where no Chromium can be had, or the `playwright`
package is missing, the tier is skipped with the reason, except under CI=true, where
that is a failure: a CI run must not pass without its browser tier (the same rule as
the PostgreSQL tier in tests/conftest.py).

One Chromium per test process (session scope, so one per xdist worker); each test
gets a fresh browser context (no cookies or storage shared between tests). Every
test in this directory carries the `browser` marker, so `-m "not browser"` skips
the tier.

Helpers for the tests (fixtures, to keep them per worker):
- `assert_accessible(page)`: runs the vendored axe-core (tests/browser/vendor, see
  its README) on the page and fails on any violation of impact "serious" or
  "critical", printing each violation with the elements it found.
- `screenshots(page, name)`: saves the page at 375 px and at 1280 px wide as test
  artefacts under build/browser-artifacts/ (git-ignored; CARRYOVER_BROWSER_ARTIFACTS
  names another directory); with CARRYOVER_UPDATE_DOCS_SCREENSHOTS=1 the pictures
  of the portal's pages (names starting `portal-`) also replace
  docs/portal/<name>-<width>.png.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _under_ci

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
AXE = HERE / "vendor" / "axe.min.js"
DOCS_SCREENSHOTS = REPO / "docs" / "portal"
WIDTHS = (375, 1280)
# Flags for a machine with no network: without the background-networking ones
# Chromium keeps opening connections the closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL_LOCK = Path(tempfile.gettempdir()) / "carryover-browser-chromium-install.lock"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def _unavailable(reason: str) -> None:
    if _under_ci():
        pytest.fail(f"{reason} (CI=true: the browser tier is required)", pytrace=False)
    print(f"browser tier skipped: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _install_chromium() -> str:
    """Install Debian's chromium where we may; the reason it failed otherwise."""
    if os.geteuid() != 0:
        return "not root, so the chromium package cannot be installed here"
    if shutil.which("apt-get") is None:
        return "no apt-get to install the chromium package with"
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing it right now
        if _find_chromium():
            return ""
        print("browser tier: /usr/bin/chromium is missing; running "
              "'apt-get install -y --no-install-recommends chromium'", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return f"apt-get install chromium failed: {' '.join(tail)}"
    return ""


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    found = _find_chromium()
    if found is None:
        why = _install_chromium()
        found = _find_chromium()
        if found is None:
            _unavailable(why or "no Chromium after installing the chromium package")
    return found  # type: ignore[return-value]


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is not installed ({exc})")
    # launch() gives Chromium a new empty profile directory of its own each time
    # and removes it at close: no state left from an earlier run.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context, 1280 px wide; requests leaving loopback are refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.off_host_requests = []  # type: ignore[attr-defined]

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "https://127.0.0.1", "data:", "about:")):
            route.continue_()
        else:
            page.off_host_requests.append(url)  # type: ignore[attr-defined]
            route.abort()

    context.route("**/*", guard)
    try:
        yield page
    finally:
        context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol, not as a <script>: the portal's
        # Content-Security-Policy forbids inline scripts, and the check must not need
        # that policy loosened (bypass_csp would change the page under test).
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => await window.axe.run(document)")
    return [v for v in result["violations"] if v.get("impact") in {"serious", "critical"}]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:5]:
            lines.append(f"    {json.dumps(node['target'])}: {node.get('failureSummary', '')}")
    return "\n".join(lines)


@pytest.fixture
def assert_accessible() -> Callable[[Any], None]:
    def check(page: Any) -> None:
        violations = axe_violations(page)
        if violations:
            report = describe_violations(violations)
            print(report, file=sys.stderr)
            pytest.fail(f"axe-core: {len(violations)} serious or critical violation(s) on "
                        f"{page.url}\n{report}", pytrace=False)
    return check


def artifacts_dir() -> Path:
    chosen = os.environ.get("CARRYOVER_BROWSER_ARTIFACTS")
    return Path(chosen) if chosen else REPO / "build" / "browser-artifacts"


@pytest.fixture
def screenshots() -> Callable[[Any, str], list[Path]]:
    """Save the page at each width; returns the artefact paths (375 px first)."""
    def take(page: Any, name: str) -> list[Path]:
        out = artifacts_dir()
        out.mkdir(parents=True, exist_ok=True)
        # Only the portal's pages illustrate docs/portal.md.
        update_docs = (os.environ.get("CARRYOVER_UPDATE_DOCS_SCREENSHOTS") == "1"
                       and name.startswith("portal-"))
        before = page.viewport_size
        saved = []
        try:
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                path = out / f"{name}-{width}.png"
                page.screenshot(path=str(path), full_page=True)
                saved.append(path)
                if update_docs:
                    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        finally:
            if before:
                page.set_viewport_size(before)
        return saved
    return take
