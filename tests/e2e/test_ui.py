"""The web UI in a real browser (Debian's headless Chromium, driven by Playwright
for Python) against the whole local stack: the `stack` fixture runs `make up`'s
stack and yields its URLs and tokens, with three agents online and a local
HTTP target at DEMO_HTTP_URL.

Screenshots go to tests/e2e/screenshots/ (git-ignored). With
UPDATE_DOCS_SCREENSHOT=1 one more test writes docs/results.png, the README's
picture of the Results page:

    UPDATE_DOCS_SCREENSHOT=1 .venv/bin/python -m pytest tests/e2e/test_ui.py -k docs

Every wait is on DOM state (Playwright's expect / wait_for), never on a clock.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"
DOCS_SCREENSHOT = ROOT / "docs" / "results.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
RESULTS_TIMEOUT_MS = 90_000  # three agents, two check types, a local target: normally a few seconds
CHECK_TYPES = ("http", "ping", "dns", "tcp", "traceroute")


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh user data dir
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def ui(stack) -> str:
    url = stack.get("UI_URL", "")
    if not url:
        pytest.fail("the stack serves no UI (UI_URL is empty): build it with `make ui`")
    return url if url.endswith("/") else url + "/"


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def set_check_types(page: Page, wanted: set[str]) -> None:
    for check_type in CHECK_TYPES:
        toggle = page.get_by_test_id(f"check-type-{check_type}")
        is_on = toggle.get_attribute("data-checked") == "true"
        if is_on != (check_type in wanted):
            toggle.click()
        expect(toggle).to_have_attribute("data-checked", "true" if check_type in wanted else "false")


def test_submit_check_and_watch_results_arrive(stack, ui, page):
    page.goto(ui)
    expect(page.get_by_test_id("new-check-form")).to_be_visible()
    expect(page.get_by_test_id("api-unreachable-banner")).to_have_count(0)

    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"])
    expect(page.get_by_test_id("target-kind")).to_have_text(re.compile("URL"))
    set_check_types(page, {"http", "tcp"})
    shot(page, "01-dashboard-filled")
    page.get_by_test_id("submit-check").click()

    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    check_url = page.url
    expect(page.get_by_test_id("results-target")).to_have_text(stack["DEMO_HTTP_URL"])

    # three agents' rows, each filling in with a finished HTTP and TCP cell
    rows = page.locator('[data-testid^="result-row-"]')
    expect(rows).to_have_count(3, timeout=RESULTS_TIMEOUT_MS)
    ok_cells = page.locator('[data-testid^="result-cell-"][data-status="ok"]')
    expect(ok_cells).to_have_count(6, timeout=RESULTS_TIMEOUT_MS)
    for row in rows.all():
        expect(row.locator('[data-check-type="http"] [data-testid="cell-headline"]')).to_have_text(
            re.compile(r"^200 · [\d.]+ m?s$")
        )
        expect(row.locator('[data-check-type="tcp"] [data-testid="cell-headline"]')).to_have_text(
            re.compile(r"connect$")
        )
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed",
                                                                  timeout=RESULTS_TIMEOUT_MS)
    expect(page.get_by_test_id("summary-http")).to_contain_text("HTTP OK from 3/3 agents")
    expect(page.get_by_test_id("summary-tcp")).to_contain_text("TCP OK from 3/3 agents")
    expect(page.get_by_test_id("polling-indicator")).to_have_count(0)
    shot(page, "02-results")

    # expand an HTTP cell: the timing waterfall
    page.locator('[data-testid^="result-cell-"][data-check-type="http"]').first.click()
    detail = page.get_by_test_id("cell-detail")
    expect(detail).to_be_visible()
    expect(detail.get_by_test_id("waterfall")).to_be_visible()
    for phase in ("dns", "connect", "ttfb", "download"):
        expect(detail.get_by_test_id(f"waterfall-bar-{phase}")).to_have_count(1)
    expect(detail.get_by_test_id("waterfall-total")).to_have_text(re.compile(r"[\d.]+ m?s"))
    shot(page, "03-results-http-expanded")

    # the shareable URL is a deep link that loads on its own (S3 error document = index.html)
    expect(page.get_by_test_id("share-url")).to_have_value(check_url)
    page.get_by_test_id("copy-link").click()
    expect(page.get_by_test_id("copy-link")).to_have_text("Copied!")
    page.goto(check_url)
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(6)

    # run again: a new check of the same target and types, on its own results page
    page.get_by_test_id("run-again").click()
    expect(page).not_to_have_url(check_url)
    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    expect(page.get_by_test_id("results-target")).to_have_text(stack["DEMO_HTTP_URL"])
    expect(page.locator('[data-testid^="result-cell-"][data-check-type="tcp"]')).to_have_count(3)
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed",
                                                                  timeout=RESULTS_TIMEOUT_MS)


def test_dns_against_the_demo_resolver(stack, ui, page):
    """A DNS check of the demo name, asked of the demo resolver: the answer table."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_DNS_NAME"])
    expect(page.get_by_test_id("target-kind")).to_have_text(re.compile("Hostname"))
    set_check_types(page, {"dns"})
    page.get_by_test_id("advanced-toggle").click()
    expect(page.get_by_test_id("opt-dns-record_type")).to_have_value("A")
    page.get_by_test_id("opt-dns-resolver").fill(stack["DEMO_DNS_SERVER"])
    if stack.get("DEMO_DNS_PORT", "53") != "53":
        page.get_by_test_id("opt-dns-port").fill(stack["DEMO_DNS_PORT"])
    page.get_by_test_id("submit-check").click()

    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed",
                                                                  timeout=RESULTS_TIMEOUT_MS)
    expect(page.get_by_test_id("check-options")).to_contain_text(f"@ {stack['DEMO_DNS_SERVER']}")
    expect(page.get_by_test_id("summary-dns")).to_contain_text("DNS OK from 3/3 agents")
    dns = page.locator('[data-testid^="result-cell-"][data-check-type="dns"]')
    expect(dns).to_have_count(3)
    for i in range(3):
        expect(dns.nth(i).get_by_test_id("cell-headline")).to_have_text(re.compile(r"^\d+ answers?: "))
    dns.first.click()
    answers = page.get_by_test_id("cell-detail").get_by_test_id("dns-answer")
    expect(answers.first).to_contain_text(stack["DEMO_HOST"])
    shot(page, "07-dns-detail")


def test_ping_tcp_traceroute_details(stack, ui, page):
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HOST"])
    expect(page.get_by_test_id("target-kind")).to_have_text(re.compile("IPv4"))
    set_check_types(page, {"ping", "tcp", "traceroute"})
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed",
                                                                  timeout=RESULTS_TIMEOUT_MS)
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(9)
    expect(page.get_by_test_id("summary-ping")).to_contain_text(re.compile(r"Ping OK from 3/3 agents, median RTT"))
    row = page.locator('[data-testid^="result-row-"]').first
    expect(row.locator('[data-check-type="ping"] [data-testid="cell-headline"]')).to_have_text(
        re.compile(r"avg · 0% loss$"))
    expect(row.locator('[data-check-type="traceroute"] [data-testid="cell-headline"]')).to_have_text(
        re.compile(r"^\d+ hops?$"))

    row.locator('[data-check-type="ping"]').click()
    detail = page.get_by_test_id("cell-detail")
    expect(detail.get_by_test_id("rtt-chart")).to_be_visible()
    expect(detail.get_by_test_id("rtt-bar")).to_have_count(4)  # the default packet count
    shot(page, "08-ping-detail")

    row.locator('[data-check-type="traceroute"]').click()
    expect(detail).to_have_attribute("data-check-type", "traceroute")
    hops = detail.get_by_test_id("traceroute-hop")
    expect(hops.last).to_contain_text(stack["DEMO_HOST"])
    shot(page, "09-traceroute-detail")


def test_https_redirects_and_tls(stack, ui, page):
    """The self-signed demo certificate fails with verify on, yet shows its details and
    timings; a redirect chain is listed hop by hop."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTPS_URL"])
    set_check_types(page, {"http"})
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", re.compile("completed|failed"),
                                                                  timeout=RESULTS_TIMEOUT_MS)
    expect(page.locator('[data-testid^="result-cell-"][data-status="failed"]')).to_have_count(3)
    expect(page.get_by_test_id("summary-http")).to_contain_text("HTTP failed on all 3 agents (tls error)")
    cell = page.locator('[data-testid^="result-cell-"][data-check-type="http"]').first
    expect(cell.get_by_test_id("status-badge")).to_have_text("tls error")
    cell.click()
    detail = page.get_by_test_id("cell-detail")
    expect(detail.get_by_test_id("result-error")).to_contain_text("tls_error")
    expect(detail.get_by_test_id("waterfall-bar-tls")).to_have_count(1)
    expect(detail.get_by_test_id("tls-details")).to_contain_text("Verified")
    expect(detail.get_by_test_id("tls-days-left")).to_have_text(re.compile(r"^-?\d+$"))
    shot(page, "10-https-tls-error")

    # the same with verification off: OK, and the certificate is shown as not verified
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTPS_URL"])
    set_check_types(page, {"http"})
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("opt-http-verify_tls").uncheck()
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("check-options")).to_contain_text("TLS not verified")
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(3,
                                                                                           timeout=RESULTS_TIMEOUT_MS)

    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"] + "r/301")
    set_check_types(page, {"http"})
    page.get_by_test_id("submit-check").click()
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(3,
                                                                                           timeout=RESULTS_TIMEOUT_MS)
    page.locator('[data-testid^="result-cell-"][data-check-type="http"]').first.click()
    hops = page.get_by_test_id("cell-detail").get_by_test_id("redirect-hop")
    expect(hops.first).to_contain_text("301")
    expect(hops.first).to_contain_text(stack["DEMO_HTTP_URL"] + "r/301")
    shot(page, "11-redirect-chain")


def test_api_down_shows_a_banner(stack, ui, page):
    """No answer at all from the API (requests aborted in the browser): a banner, not a blank page."""
    api = stack["API_URL"].rstrip("/")
    page.route(f"{api}/**", lambda route: route.abort("connectionrefused"))
    page.goto(ui)
    expect(page.get_by_test_id("api-unreachable-banner")).to_be_visible()
    expect(page.get_by_test_id("api-unreachable-banner")).to_contain_text(api)
    expect(page.get_by_test_id("new-check-form")).to_be_visible()
    expect(page.get_by_test_id("recent-checks-error")).to_be_visible()
    shot(page, "12-api-down")
    page.unroute(f"{api}/**")
    expect(page.get_by_test_id("api-unreachable-banner")).to_have_count(0, timeout=30_000)


def test_agents_page_shows_three_online_agents(stack, ui, page):
    page.goto(ui)
    page.get_by_test_id("nav-agents").click()
    expect(page).to_have_url(re.compile(r"/agents$"))
    online = page.locator('[data-testid^="agent-card-"][data-status="online"]')
    expect(online).to_have_count(3, timeout=30_000)
    expect(page.get_by_test_id("agents-online-count")).to_contain_text("3 of")
    for card in online.all():
        expect(card.get_by_test_id("agent-heartbeat")).to_have_text(re.compile(r"ago$|^just now$"))
        # per-type stats, or the empty note when the agent has run nothing yet
        expect(card.locator('[data-testid="agent-stats"], [data-testid="agent-stats-empty"]')).to_have_count(1)
    shot(page, "04-agents")

    # a deep link to /agents loads too
    page.reload()
    expect(page.locator('[data-testid^="agent-card-"][data-status="online"]')).to_have_count(3)


def test_bad_target_shows_the_field_error(stack, ui, page):
    page.goto(ui)
    form_url = page.url
    target = page.get_by_test_id("target-input")

    # validated as you type
    target.fill("not a host!")
    expect(page.get_by_test_id("field-error-target")).to_contain_text("spaces")
    target.fill("-bad-.example")
    expect(page.get_by_test_id("field-error-target")).to_contain_text("Not a valid")
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("field-error-target")).to_be_visible()
    expect(page).to_have_url(form_url)
    shot(page, "05-bad-target")

    # an error only the API knows about lands next to the field it names
    target.fill(stack["DEMO_HTTP_URL"])
    expect(page.get_by_test_id("field-error-target")).to_have_count(0)
    set_check_types(page, {"http"})
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("opt-http-expected_status").fill("600-700")
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("field-error-options.http.expected_status")).to_be_visible()
    expect(page).to_have_url(form_url)
    shot(page, "06-api-field-error")


@pytest.mark.skipif(os.environ.get("UPDATE_DOCS_SCREENSHOT") != "1",
                    reason="writes docs/results.png only when UPDATE_DOCS_SCREENSHOT=1")
def test_docs_results_screenshot(stack, ui, page):
    """The README's screenshot: a four-type check from three agents, one HTTP cell expanded."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"])
    set_check_types(page, {"http", "ping", "tcp", "traceroute"})
    page.get_by_test_id("submit-check").click()
    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    expect(page.get_by_test_id("check-status")).to_have_attribute("data-status", "completed",
                                                                  timeout=RESULTS_TIMEOUT_MS)
    expect(page.locator('[data-testid^="result-row-"]')).to_have_count(3)
    page.locator('[data-testid^="result-cell-"][data-check-type="http"]').first.click()
    expect(page.get_by_test_id("waterfall")).to_be_visible()
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot(page, "docs-results"), DOCS_SCREENSHOT)
