"""/docs works offline (Swagger UI served from the fastapi-offline package), and a body
sent without a JSON content type is answered with what is expected (issue 16 item 7)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api_support import Api, served_api


@pytest.fixture
def api(tmp_path) -> Api:
    with served_api(f"sqlite:///{tmp_path / 'api.db'}") as served:
        yield served


def test_docs_page_loads_its_assets_from_this_server(api: Api):
    page = httpx.get(f"{api.url}/docs")
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources, page.text
    for src in sources:
        assert src.startswith("/"), f"{src} is not served here (a CDN?)"
        asset = httpx.get(f"{api.url}{src}")
        assert asset.status_code == 200, src
        assert len(asset.content) > 100, src
    assert any(s.endswith("swagger-ui-bundle.js") for s in sources)
    js = httpx.get(f"{api.url}/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("application/javascript", "text/javascript"))


def test_a_post_without_content_type_says_a_json_body_is_expected(api: Api):
    body = '{"name": "newco", "cycle_day": 5, "timezone": "America/New_York"}'
    answer = api.call("POST", "/v1/accounts", content=body.encode())
    assert "content-type" not in {k.lower() for k in answer.request.headers}
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "body"
    assert "Content-Type: application/json" in error["message"]
    with_type = api.call("POST", "/v1/accounts", content=body.encode(),
                         headers={"content-type": "application/json"})
    assert with_type.status_code == 201
