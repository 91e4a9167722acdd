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


def test_first_screen_shows_the_verdict_and_key_figures_and_no_option_dump(tmp_path, browser):
    import json

    from locust.argument_parser import default_args_dict

    folder = synthesize_results(tmp_path / "run", total=2000, files=1)
    run = json.loads((folder / "run.json").read_text())
    # Every Locust option, as a real run records them: the defaults and a few the user set.
    defaults = {name: value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
                for name, value in default_args_dict().items()}  # fmt: skip
    run["options"] = {**defaults, "num_users": 100, "headless": True, "slo": "e2e_p95<=4s"}
    run["option_defaults"] = {**defaults, "slo": ""}
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "emulator_stats.json").write_text(json.dumps({"requests": 2000, "by_status": {"200": 1990}}))
    report = build_report(folder)

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(report.as_uri(), wait_until="load")
    fold = 768

    def above_the_fold(locator) -> bool:
        box = locator.bounding_box()
        return locator.is_visible() and box is not None and box["y"] + box["height"] <= fold

    verdict = page.locator("#verdict")
    assert above_the_fold(verdict), verdict.bounding_box()
    missed = sum(1 for gate in run["slo"] if not gate["passed"])
    expected = f"{missed} of {len(run['slo'])} SLO gates missed" if missed else "SLO gates passed"
    assert expected in verdict.inner_text()
    figures = page.locator("dl.figures > div")
    labels = [figures.nth(i).locator("dt").inner_text() for i in range(figures.count())]
    for label in ("Calls", "Failed", "End-to-end p50 / p95", "TTFT p50 / p95", "Cost"):
        assert label in labels, labels
        assert above_the_fold(figures.nth(labels.index(label))), label
    gates = page.locator("ul.gates li")
    assert gates.count() == len(run["slo"]) and all(
        above_the_fold(gates.nth(i)) for i in range(gates.count())
    )

    # No option dump on the first screen, and Locust's defaults stay folded even further down.
    cut = page.evaluate(
        """(fold) => [...document.querySelectorAll('dt, dd, td, p, li')]
            .filter(e => e.getBoundingClientRect().top < fold && e.offsetParent !== null)
            .map(e => e.innerText).join('\\n')""",
        fold,
    )
    for option in ("class_picker", "legacy_ui", "autoquit", "Emulator stats"):
        assert option not in cut, option
        assert option in page.content(), f"{option} is in the report, folded"
    assert not page.get_by_text("class_picker", exact=True).is_visible()
    assert not page.get_by_text('"by_status"').is_visible(), "the emulator's stats JSON is folded"
    set_by_user = page.locator("#metadata h3:has-text('Options you set') + dl")
    assert set_by_user.is_visible() and "e2e_p95<=4s" in set_by_user.inner_text()
    assert "class_picker" not in set_by_user.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-first-screen.png"))
