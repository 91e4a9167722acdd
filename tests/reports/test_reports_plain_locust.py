"""Any Locust CSV: a plain (non-LLM) locustfile run with `locust --csv out/run1`, then
`python -m reports out`. A real Locust child against a tiny local HTTP server, no suite code in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from report_html import cells, section

from reports import ReportInputError
from reports.loading import load_results

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<b>html</b> home"

PLAIN_LOCUSTFILE = f"""
from locust import HttpUser, constant, task


class Plain(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/", name={HOSTILE!r})

    @task
    def missing(self):
        self.client.get("/missing")  # 404: a failure
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status = 200 if self.path == "/" else 404
        body = b"hello" if status == 200 else b"no"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # quiet: the test reads Locust's CSVs, not this
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def plain_run(site: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`locust -f plain.py --headless --csv out/run1 --csv-full-history -u 2 -r 2 -t 3s`: its out/."""
    work = tmp_path_factory.mktemp("plain")
    (work / "plain.py").write_text(PLAIN_LOCUSTFILE)
    (work / "out").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "plain.py", "--headless", "--csv", "out/run1",
         "--csv-full-history", "-u", "2", "-r", "2", "-t", "3s", "--host", site, "--loglevel", "WARNING"],
        cwd=work, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    # Locust exits 1 when any request failed: the 404s are on purpose.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert (work / "out" / "run1_stats.csv").exists(), sorted(p.name for p in (work / "out").iterdir())
    return work / "out"


def run_reports(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_plain_locust_folder_gives_a_report_with_its_percentiles_and_charts(
    plain_run: Path, tmp_path: Path
):
    out = tmp_path / "out"
    shutil.copytree(plain_run, out)
    done = run_reports(out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "report.html")
    html = (out / "report.html").read_text(encoding="utf-8")

    # The run's own percentiles, row by row, from run1_stats.csv.
    summary = section(html, "locust-summary")
    assert "From run1_stats.csv" in summary
    home = cells(summary, "GET")  # the first GET row, sorted by name: /missing
    assert home[1] == "/missing" and int(home[2].replace(",", "")) > 0 and home[3] == home[2]
    aggregated = cells(summary, "")
    assert aggregated[1] == "Aggregated" and int(aggregated[2].replace(",", "")) > int(
        home[2].replace(",", "")
    )
    assert all(value != "–" for value in aggregated[6:11]), "average and p50 to p99 are all there"

    # The HTML in a request name is text wherever it goes: tables and chart captions alike.
    assert "&lt;b&gt;html&lt;/b&gt; home" in summary
    assert "<b>html</b>" not in html

    # Requests and failures over time, percentiles over time, p95 per request name (full history).
    timeline = section(html, "locust-timeline")
    for chart in ("chart-throughput", "chart-latency-locust", "chart-latency-endpoints"):
        assert f'id="{chart}"' in timeline
    assert 'src="data:image/png;base64,' in timeline
    failures = section(html, "locust-failures")
    assert "/missing" in failures and "404" in failures

    # The first screen: no gates were set, so nothing is claimed; Locust's rule is named.
    verdict = html[html.index('<div id="verdict"') : html.index("</dl>")]
    assert "No SLO gates set: nothing judged" in verdict and "Locust&#39;s own rule" in verdict
    assert "Requests" in verdict and "Response time p50 / p95" in verdict


def test_several_runs_in_one_folder_need_prefix_and_prefix_picks_one(plain_run: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(plain_run, out)
    for path in list(out.glob("run1_*.csv")):
        shutil.copy(path, out / path.name.replace("run1_", "run2_"))
    (out / "run2_stats.csv").write_text((out / "run2_stats.csv").read_text().replace("/missing", "/gone"))

    done = run_reports(out)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {out} holds the CSVs of 2 Locust runs (prefixes run1, run2): pick one with --prefix NAME\n"
    )

    done = run_reports(out, "--prefix", "run2")
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert (
        "From run2_stats.csv" in html
        and "/gone" in html
        and "/missing" not in section(html, "locust-summary")
    )

    done = run_reports(out, "--prefix", "run3")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no run3_stats.csv in" in done.stderr and "prefixes found there: run1, run2" in done.stderr


def test_a_cut_stats_file_of_a_prefixed_run_is_a_one_line_warning(plain_run: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(plain_run, out)
    (out / "run1_stats.csv").write_text("")
    data = load_results(out)
    assert data.prefix == "run1" and data.stats is None and data.history is not None
    assert "run1_stats.csv is empty (0 bytes); the run probably stopped before writing it" in data.warnings
    for path in out.glob("run1_*.csv"):
        path.write_text("")
    with pytest.raises(ReportInputError) as caught:
        load_results(out)
    message = str(caught.value)
    assert (
        message.startswith(f"nothing to report in {out} (needs Locust's *_stats.csv") and "\n" not in message
    )
