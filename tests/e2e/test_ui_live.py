"""Live results in a real browser: with polling disabled (every GET /api/checks/{id} after the
page's first is refused), a running check's cells still fill in, pushed over the WebSocket.

Needs the stack to publish WS_URL in stack.env and `wsUrl` in the UI's config.json."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Route, expect

from tests.e2e.test_ui import RESULTS_TIMEOUT_MS, browser_context, page, shot, ui  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

SLOW_MS = 3000  # the target answers after this, so the page is open well before any result


def _disable_polling(browser_page, check_id: str) -> dict:
    """Let the page's first GET of the check through and refuse every later one."""
    seen = {"gets": 0, "refused": 0}

    def handle(route: Route):
        if route.request.method != "GET":
            return route.continue_()
        seen["gets"] += 1
        if seen["gets"] == 1:
            return route.continue_()
        seen["refused"] += 1
        return route.abort()

    browser_page.route(re.compile(rf"/api/checks/{check_id}(\?.*)?$"), handle)
    return seen


def test_a_cell_fills_in_over_the_socket_with_polling_disabled(stack, ui, page):  # noqa: F811
    if not stack.get("WS_URL"):
        pytest.fail("the stack publishes no WS_URL in stack.env (the WebSocket emulator is not running)")
    target = stack["DEMO_HTTP_URL"].rstrip("/") + f"/slow?ms={SLOW_MS}"
    created = requests.post(f"{stack['API_URL']}/api/checks", json={"target": target, "checks": ["http"]}, timeout=10)
    assert created.status_code == 202, created.text
    check_id = created.json()["check_id"]
    seen = _disable_polling(page, check_id)
    page.goto(f"{ui}results/{check_id}")
    expect(page.get_by_test_id("live-indicator")).to_have_text(re.compile("live"), timeout=RESULTS_TIMEOUT_MS)
    cells = page.locator('[data-testid^="result-cell-"][data-check-type="http"]')
    expect(cells).to_have_count(3, timeout=RESULTS_TIMEOUT_MS)
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(3, timeout=RESULTS_TIMEOUT_MS)
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id("summary-http")).to_contain_text("HTTP OK from 3/3 agents")
    shot(page, "live-results")
    assert seen["gets"] - seen["refused"] == 1  # everything after the first load came over the socket
