"""The web UI in a real browser (Debian's headless Chromium, driven by Playwright
for Python) against the whole local stack: the `stack` fixture runs `make up`'s
stack and yields its URLs and tokens, with three agents online and a local
HTTP target at DEMO_HTTP_URL.

Screenshots go to tests/e2e/screenshots/ (git-ignored). With
UPDATE_DOCS_SCREENSHOT=1 one more test writes docs/results.png, the README's
pictures of the Results page (docs/results.png, and at 375 px docs/results-phone.png):

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
DOCS_PHONE_SCREENSHOT = ROOT / "docs" / "results-phone.png"
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
CHECK_TYPES = ("http", "ping", "dns", "tcp", "traceroute", "mtr")


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
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
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
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )


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
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
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
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(9)
    expect(page.get_by_test_id("summary-ping")).to_contain_text(re.compile(r"Ping OK from 3/3 agents, median RTT"))
    row = page.locator('[data-testid^="result-row-"]').first
    expect(row.locator('[data-check-type="ping"] [data-testid="cell-headline"]')).to_have_text(
        re.compile(r"avg · 0% loss$")
    )
    expect(row.locator('[data-check-type="traceroute"] [data-testid="cell-headline"]')).to_have_text(
        re.compile(r"^\d+ hops?$")
    )

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


def test_tcp_ping_and_mtr_details(stack, ui, page):
    """Ping over TCP to the demo site's HTTP port, and an mtr whose hop table and RTT chart end at it."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HOST"])
    set_check_types(page, {"ping", "mtr"})
    page.get_by_test_id("advanced-toggle").click()
    page.get_by_test_id("opt-ping-protocol").select_option("tcp")
    page.get_by_test_id("opt-ping-port").fill("80")
    page.get_by_test_id("opt-mtr-count").fill("3")
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(6)
    expect(page.get_by_test_id("summary-mtr")).to_contain_text(re.compile(r"MTR OK from 3/3 agents, median RTT"))
    row = page.locator('[data-testid^="result-row-"]').first
    expect(row.locator('[data-check-type="ping"] [data-testid="cell-headline"]')).to_have_text(
        re.compile(r"avg · 0% loss · TCP 80$")
    )
    row.locator('[data-check-type="mtr"]').click()
    detail = page.get_by_test_id("cell-detail")
    expect(detail).to_have_attribute("data-check-type", "mtr")
    expect(detail.get_by_test_id("mtr-chart")).to_be_visible()
    hops = detail.get_by_test_id("mtr-hop")
    expect(hops.last).to_contain_text(stack["DEMO_HOST"])
    expect(detail.get_by_test_id("mtr-bar").last).to_have_attribute("data-lost", "false")
    shot(page, "10-mtr-detail")


def test_https_redirects_and_tls(stack, ui, page):
    """The self-signed demo certificate fails with verify on, yet shows its details and
    timings; a redirect chain is listed hop by hop."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTPS_URL"])
    set_check_types(page, {"http"})
    page.get_by_test_id("submit-check").click()
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", re.compile("completed|failed"), timeout=RESULTS_TIMEOUT_MS
    )
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
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(3, timeout=RESULTS_TIMEOUT_MS)

    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"] + "r/301")
    set_check_types(page, {"http"})
    page.get_by_test_id("submit-check").click()
    expect(page.locator('[data-testid^="result-cell-"][data-status="ok"]')).to_have_count(3, timeout=RESULTS_TIMEOUT_MS)
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


@pytest.mark.skipif(
    os.environ.get("UPDATE_DOCS_SCREENSHOT") != "1", reason="writes docs/results.png only when UPDATE_DOCS_SCREENSHOT=1"
)
def test_docs_results_screenshot(stack, ui, page):
    """The README's screenshot: a four-type check from three agents, one HTTP cell expanded."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"])
    set_check_types(page, {"http", "ping", "tcp", "traceroute"})
    page.get_by_test_id("submit-check").click()
    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
    expect(page.locator('[data-testid^="result-row-"]')).to_have_count(3)
    page.locator('[data-testid^="result-cell-"][data-check-type="http"]').first.click()
    expect(page.get_by_test_id("waterfall")).to_be_visible()
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot(page, "docs-results"), DOCS_SCREENSHOT)
    # the same page on a phone: one card per agent
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        expect(page.get_by_test_id("results-view")).to_have_attribute("data-layout", "cards")
        shutil.copyfile(shot(page, "docs-results-phone"), DOCS_PHONE_SCREENSHOT)
    finally:
        page.set_viewport_size(VIEWPORT)


def run_http_check(page: Page, stack, ui: str) -> str:
    """Submit an HTTP + ping check of the demo target and wait until it is completed; its results URL."""
    page.goto(ui)
    page.get_by_test_id("target-input").fill(stack["DEMO_HTTP_URL"])
    set_check_types(page, {"http", "ping"})
    page.get_by_test_id("submit-check").click()
    expect(page).to_have_url(re.compile(r"/results/[^/?#]+$"))
    expect(page.get_by_test_id("check-status")).to_have_attribute(
        "data-status", "completed", timeout=RESULTS_TIMEOUT_MS
    )
    return page.url


def test_a_deep_link_loads_with_200_and_no_failed_requests(stack, ui, page):
    """A shared /results/<id> link, opened cold, is answered 200 and fetches nothing that fails;
    a nested unknown path renders NotFound (not a blank page)."""
    check_url = run_http_check(page, stack, ui)
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda res: failed.append(f"{res.url} -> {res.status}") if res.status >= 400 else None)

    fresh = page.context.new_page()
    fresh.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
    fresh.on("response", lambda res: failed.append(f"{res.url} -> {res.status}") if res.status >= 400 else None)
    try:
        response = fresh.goto(check_url)
        assert response is not None and response.status == 200, f"{check_url} answered {response and response.status}"
        expect(fresh.locator('[data-testid^="result-row-"]')).to_have_count(3)
        assert failed == [], f"failed requests on a deep link: {failed}"

        fresh.goto(ui + "agents/3f2a7c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b/x")
        expect(fresh.get_by_test_id("not-found")).to_be_visible()
        expect(fresh.get_by_test_id("nav-agents")).to_be_visible()
        assert not [f for f in failed if "/assets/" in f], f"assets failed under a nested path: {failed}"
    finally:
        fresh.close()


def test_phone_viewport_shows_every_agents_verdict_without_horizontal_scrolling(stack, ui, page):
    check_url = run_http_check(page, stack, ui)
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        page.goto(check_url)
        expect(page.get_by_test_id("results-view")).to_have_attribute("data-layout", "cards")
        cells = page.locator('[data-testid^="result-cell-"]')
        expect(cells).to_have_count(6)  # three agents, http and ping
        for i in range(cells.count()):
            badge = cells.nth(i).get_by_test_id("status-badge")
            badge.scroll_into_view_if_needed()  # the cards stack downwards: scrolling down is expected, sideways not
            expect(badge).to_be_in_viewport()
            box = badge.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 375, f"the page scrolls sideways at 375 px: {scroll_width} px wide"

        # a detail opened on the phone fits the screen too
        cells.first.click()
        expect(page.get_by_test_id("cell-detail")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "13-phone-results")
    finally:
        page.set_viewport_size(VIEWPORT)


def test_expand_all_shows_every_waterfall_on_one_scale(stack, ui, page):
    run_http_check(page, stack, ui)
    page.get_by_test_id("expand-all").click()
    waterfalls = page.get_by_test_id("waterfall")
    expect(waterfalls).to_have_count(3)
    scales = {w.get_attribute("data-scale-ms") for w in waterfalls.all()}
    assert len(scales) == 1, f"each waterfall has its own scale: {scales}"
    totals = [
        float(w.get_attribute("data-total-ms")) for w in page.locator('[data-testid^="compare-waterfall-"]').all()
    ]
    assert len(totals) == 3 and float(scales.pop()) == max(totals)
    charts = page.get_by_test_id("cell-detail").get_by_test_id("rtt-chart")
    expect(charts).to_have_count(3)
    assert len({c.get_attribute("data-max-ms") for c in charts.all()}) == 1
    shot(page, "14-expand-all")
