"""CloudFront serves the UI's deep links as index.html with 200, and nothing else.

infra/core.yaml's viewer-request function rewrites the app's own routes (frontend/src/App.tsx)
to /index.html; every other path that is not a file falls to S3's 403, which the distribution
answers with index.html (the app's NotFound page) and status 404. A missing asset must stay a
404, not HTML with 200, or a stale page would load index.html as a script.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "infra" / "core.yaml"


def _app_routes() -> re.Pattern:
    match = re.search(r"var APP_ROUTES = /(.+)/;", CORE.read_text())
    assert match, "infra/core.yaml has no APP_ROUTES in its CloudFront function"
    return re.compile(match.group(1).replace(r"\/", "/"))


@pytest.mark.parametrize(
    "uri", ["/results/3f2a7c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b", "/results/abc/", "/agents", "/agents/"]
)
def test_deep_links_to_app_pages_are_rewritten_to_index_html(uri):
    assert _app_routes().match(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "/",
        "/index.html",
        "/assets/index-1a2b3c.js",
        "/config.json",
        "/favicon.svg",
        "/agents/3f2a7c1e/x",
        "/results",
        "/results/a/b",
        "/nope",
    ],
)
def test_files_and_unknown_paths_are_not_rewritten(uri):
    assert not _app_routes().match(uri)


def test_unknown_paths_get_the_app_with_a_404_status():
    text = CORE.read_text()
    assert "{ErrorCode: 403, ResponseCode: 404, ResponsePagePath: /index.html" in text
    assert "ResponseCode: 200" not in text


def test_the_local_s3_website_redirects_the_apps_routes_to_a_hash_route():
    """LocalStack's S3 website (infra/local.yaml) cannot answer a deep link with 200, so it redirects
    the app's routes to /#/<path> (the app restores the path); other missing keys stay a 404."""
    local = (CORE.parent / "local.yaml").read_text()
    rules = re.findall(
        r"KeyPrefixEquals: ([\w/]+), HttpErrorCodeReturnedEquals: \"404\"\}\s*\n\s*"
        r"RedirectRule: \{ReplaceKeyPrefixWith: \"#/([\w/]+)\"",
        local,
    )
    assert rules, "infra/local.yaml has no routing rules for the app's routes"
    for prefix, replacement in rules:
        assert replacement == prefix
    for key in ("results/3f2a7c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b", "agents"):
        assert any(key.startswith(prefix) for prefix, _ in rules), key
    assert not any("assets/index-1a2b3c.js".startswith(prefix) for prefix, _ in rules)
