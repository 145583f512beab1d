"""The calls UCloud's web client makes besides the Jobs API: ``products.v2.browse`` /
``products.v2.retrieve`` (reference 5.3) and ``POST /auth/refresh/web`` (reference 2.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from jupyter_ucloud.protocol import ComputeProduct, ErrorBody, PageV2, RefreshResponse

from ..conftest import LocalServerProcess
from .conftest import api_for, assert_log_clean

#: Products of the server below: two categories, names that sort differently from the list.
PRODUCTS = [
    {"name": "zeta", "category": "big"},
    {"name": "alpha", "category": "big"},
    {"name": "mid", "category": "small"},
    {"name": "beta", "category": "alpha-cat"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServerProcess]:
    tmp_path = tmp_path_factory.mktemp("web-calls")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"products": PRODUCTS, "provider_id": "prov"}))
    process = LocalServerProcess(tmp_path / "ucloud-local", config_file=config).start()
    yield process
    assert_log_clean(process)
    process.stop()


def _browse(server: LocalServerProcess, **params: Any) -> requests.Response:
    return requests.get(server.url + "/api/products/v2/browse", params=params, timeout=10)


def _error(response: requests.Response) -> ErrorBody:
    assert response.headers["Content-Type"].startswith("application/json")
    return ErrorBody.model_validate(response.json())


def test_browse_walks_products_by_category_and_name(server: LocalServerProcess) -> None:
    # public, as in the core: no bearer needed
    response = _browse(server, itemsPerPage=250, filterProductType="COMPUTE")
    assert response.status_code == 200
    raw = response.json()
    page = PageV2[ComputeProduct].model_validate(raw)
    assert page.to_wire() == raw
    assert [(p.category_name, p.name) for p in page.items] == [
        ("alpha-cat", "beta"),
        ("big", "alpha"),
        ("big", "zeta"),
        ("small", "mid"),
    ]
    assert page.next is None
    first = raw["items"][0]
    assert first["type"] == "compute"
    assert first["productType"] == "COMPUTE"
    assert first["category"]["provider"] == "prov"


def test_browse_pages_with_a_cursor(server: LocalServerProcess) -> None:
    seen = []
    cursors = []
    next_token = None
    while True:
        params: dict[str, Any] = {"itemsPerPage": 3}
        if next_token:
            params["next"] = next_token
        page = PageV2[ComputeProduct].model_validate(_browse(server, **params).json())
        assert page.items_per_page == 3
        seen += [p.name for p in page.items]
        next_token = page.next
        if next_token is None:
            break
        cursors.append(next_token)
    assert seen == ["beta", "alpha", "zeta", "mid"]
    assert cursors == ["prov@big@zeta"]


def test_browse_filters(server: LocalServerProcess) -> None:
    def names(**params: Any) -> list[str]:
        response = _browse(server, **params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert names(filterCategory="big") == ["alpha", "zeta"]
    assert names(filterName="mid") == ["mid"]
    assert names(filterProvider="prov", filterUsable="true", includeBalance="true") == [
        "beta",
        "alpha",
        "zeta",
        "mid",
    ]
    assert names(filterProvider="elsewhere") == []
    assert names(filterProductType="STORAGE") == []
    assert names(itemsPerPage=0) == ["beta", "alpha", "zeta", "mid"]  # <= 0 is 50


@pytest.mark.parametrize(
    "params",
    [{"next": "no-at-signs"}, {"itemsPerPage": "many"}, {"filterUsable": "maybe"}],
)
def test_browse_bad_queries(server: LocalServerProcess, params: dict[str, str]) -> None:
    response = _browse(server, **params)
    assert response.status_code == 400
    assert _error(response).why == "Invalid request supplied"


def test_retrieve_one_product(server: LocalServerProcess) -> None:
    url = server.url + "/api/products/v2/retrieve"
    found = requests.get(
        url,
        params={"filterName": "zeta", "filterCategory": "big", "filterProvider": "prov"},
        timeout=10,
    )
    assert found.status_code == 200
    assert ComputeProduct.model_validate(found.json()).name == "zeta"
    missing = requests.get(url, params={"filterName": "zeta"}, timeout=10)
    assert missing.status_code == 400
    assert _error(missing).why == "Name, category and provider must be supplied"
    unknown = requests.get(
        url,
        params={"filterName": "zeta", "filterCategory": "small", "filterProvider": "prov"},
        timeout=10,
    )
    assert unknown.status_code == 404
    assert _error(unknown).why == "Unknown product"


def _csrf(server: LocalServerProcess) -> str:
    response = requests.post(
        server.url + "/auth/refresh",
        headers={"Authorization": f"Bearer {server.refresh_token}"},
        timeout=10,
    )
    return str(response.json()["csrfToken"])


def _refresh_web(
    server: LocalServerProcess,
    *,
    cookie: str | None,
    csrf: str | None,
    origin: str | None = None,
    referer: str | None = None,
) -> requests.Response:
    headers = {}
    if csrf is not None:
        headers["X-CSRFToken"] = csrf
    if origin is not None:
        headers["Origin"] = origin
    if referer is not None:
        headers["Referer"] = referer
    cookies = {"refreshToken": cookie} if cookie is not None else None
    return requests.post(
        server.url + "/auth/refresh/web", headers=headers, cookies=cookies, timeout=10
    )


def test_refresh_web_with_cookie_and_csrf(server: LocalServerProcess) -> None:
    token, csrf = server.refresh_token, _csrf(server)
    ok = _refresh_web(server, cookie=token, csrf=csrf, origin=server.url)
    assert ok.status_code == 200, ok.text
    tokens = RefreshResponse.model_validate(ok.json())
    assert tokens.csrf_token == csrf
    api_for(server)  # and the ordinary refresh still works
    # the access token works on the API
    products = requests.get(
        server.url + "/api/jobs/retrieveProducts",
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        timeout=10,
    )
    assert products.status_code == 200
    # a Referer of this server does as well (no Origin), and UCloud's dev web client's host
    by_referer = _refresh_web(server, cookie=token, csrf=csrf, referer=server.url + "/app/jobs")
    assert by_referer.status_code == 200
    dev = _refresh_web(server, cookie=token, csrf=csrf, origin="http://localhost:9000")
    assert dev.status_code == 200


def test_refresh_web_refusals(server: LocalServerProcess) -> None:
    token, csrf = server.refresh_token, _csrf(server)
    for origin in ("https://evil.example", "null", ""):
        response = _refresh_web(server, cookie=token, csrf=csrf, origin=origin or None)
        assert response.status_code == 403, origin
        assert _error(response).why == "Untrusted origin"
    refused = [
        _refresh_web(server, cookie=token, csrf=None, origin=server.url),
        _refresh_web(server, cookie=token, csrf="0" * 32, origin=server.url),
        _refresh_web(server, cookie=None, csrf=csrf, origin=server.url),
        _refresh_web(server, cookie="ab" * 32, csrf=csrf, origin=server.url),
    ]
    for response in refused:
        assert response.status_code == 401
        assert _error(response).why == "Unauthorized"
    # the Bearer form is /auth/refresh's, not this call's
    bearer = requests.post(
        server.url + "/auth/refresh/web",
        headers={"Authorization": f"Bearer {token}", "Origin": server.url},
        timeout=10,
    )
    assert bearer.status_code == 401
    assert requests.get(server.url + "/auth/refresh/web", timeout=10).status_code == 404
