"""The browser harness itself: Chromium renders a page served by `carryover serve`'s app
from loopback alone, the screenshots come out at the two widths, and the axe-core
check finds a violation where there is one (so its silence on a page means something).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.api_support import Api, served_api
from tests.browser.conftest import axe_violations


@pytest.fixture
def api(tmp_path: Path) -> Api:
    with served_api(f"sqlite:///{tmp_path / 'api.db'}") as served:
        yield served


def png_width(path: Path) -> int:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">I", head[16:20])[0]


def test_the_api_docs_page_runs_from_this_server_alone(api: Api, page, screenshots):
    page.goto(f"{api.url}/docs")
    # The container below is built by the Swagger UI bundle: it ran, loaded from here.
    page.locator("#swagger-ui .swagger-ui").wait_for(state="attached")
    page.wait_for_load_state("networkidle")
    assert page.off_host_requests == []
    saved = screenshots(page, "harness-api-docs")
    assert [png_width(p) for p in saved] == [375, 1280]


def test_the_api_docs_page_shows_the_operations(api: Api, page):
    page.goto(f"{api.url}/docs")
    # Swagger UI 5 parses the whole document in script first: on a loaded 2-core
    # machine that has taken more than 3 s.
    page.locator(".opblock").first.wait_for(timeout=20_000)
    assert page.locator(".opblock").count() > 10


def test_axe_reports_a_serious_violation_and_passes_a_clean_page(page):
    page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body>'
                     '<main><form><input type="text" name="q"></form></main></body></html>')
    found = {v["id"] for v in axe_violations(page)}
    assert "label" in found  # an input with no label is a critical violation
    page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body>'
                     '<main><form><label for="q">Query</label>'
                     '<input id="q" type="text" name="q"></form></main></body></html>')
    assert axe_violations(page) == []
