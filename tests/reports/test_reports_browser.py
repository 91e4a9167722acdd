"""A real report in a real browser (Chromium via Playwright, headless, no network)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import synthesize_results
from reports import build_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def test_report_opens_without_console_errors_and_every_image_loads(tmp_path, browser):
    report = build_report(synthesize_results(tmp_path / "run", total=5000, files=2))
    console_errors: list[str] = []
    remote_requests: list[str] = []
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))

    def block_remote(route):
        if not route.request.url.startswith(("file:", "data:")):
            remote_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", block_remote)
    page.goto(report.as_uri(), wait_until="load")
    widths = page.eval_on_selector_all(
        "img", "images => images.map(image => image.complete ? image.naturalWidth : 0)"
    )
    toc_links = page.eval_on_selector_all("nav a", "links => links.map(link => link.getAttribute('href'))")
    missing_targets = [href for href in toc_links if page.query_selector(href) is None]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert console_errors == []
    assert remote_requests == [], "the report must make no network requests"
    assert len(widths) >= 10 and all(width > 0 for width in widths), widths
    assert len(toc_links) >= 10 and missing_targets == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
