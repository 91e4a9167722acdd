"""Report build time and peak memory for a synthetic run of 1,000,000 requests.

`python -m benchmarks report` writes a synthetic results folder (per-request logs, Locust CSVs,
run.json, health.csv) to a temp dir, builds its report in a child process the way a user would
(`python -m reports DIR`) and ends with one JSON line: report_seconds_1m, report_peak_mb_1m.
The synthetic folder is also used by the report tests, at a few thousand requests.
The load steps up through five stages; latency bends upward past the fourth, so a report should find
a knee, SLO misses in the last stage, rate limiting there, and a busy generator at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalogue import catalogue, default_model
from core.outcome import OUTCOME_COLUMNS, Outcome

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STAGE_RPS = (40.0, 80.0, 120.0, 160.0, 200.0)
CAPACITY_RPS = 210.0  # the synthetic server's saturation point
QUOTA_RPS = 180.0  # above this the synthetic server answers some calls with 429
SCENARIOS = ("chat", "chat-stream", "moderation", "vision")
MODEL = default_model()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _requests(total: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict[str, float | str]]]:
    weights = np.array(STAGE_RPS)
    # Every stage lasts the same time; more rps means more requests in it.
    stage_seconds = total / weights.sum()
    stages, starts, stage_index = [], [], []
    for index, rps in enumerate(STAGE_RPS):
        begin = START + index * stage_seconds
        count = (
            int(round(rps * stage_seconds)) if index < len(STAGE_RPS) - 1 else total - sum(map(len, starts))
        )
        starts.append(np.sort(rng.uniform(begin, begin + stage_seconds, count)))
        stage_index.append(np.full(count, index))
        stages.append({"name": f"step-{int(rps)}", "start": begin, "end": begin + stage_seconds})
    start = np.concatenate(starts)
    stage = np.concatenate(stage_index)
    load = np.array(STAGE_RPS)[stage]
    scenario = rng.choice(len(SCENARIOS), size=total, p=[0.3, 0.3, 0.2, 0.2])
    utilisation = np.minimum(load / CAPACITY_RPS, 0.95)
    queueing = 1.0 / (1.0 - utilisation)  # grows sharply as load nears capacity: the knee
    output_tokens = rng.integers(20, 400, total).astype(float)
    e2e = (300.0 + output_tokens * 2.0) * queueing * rng.lognormal(0.0, 0.25, total)
    streaming = scenario == 1
    ttft = np.where(streaming, 200.0 * queueing * rng.lognormal(0.0, 0.3, total), np.nan)
    last_chunk = np.where(streaming, e2e * 0.98, np.nan)
    tpot = np.where(streaming, (last_chunk - ttft) / (output_tokens - 1), np.nan)

    kind = np.full(total, "", dtype=object)
    overloaded = load > QUOTA_RPS
    kind[(rng.random(total) < 0.08) & overloaded] = "rate_limited"
    kind[rng.random(total) < 0.002] = "server_error"
    kind[(rng.random(total) < 0.001) & overloaded] = "timeout"
    moderation = scenario == 2
    kind[moderation & (rng.random(total) < 0.05)] = "blocked"
    failed = np.isin(kind, ["rate_limited", "server_error", "timeout"])
    e2e = np.where(kind == "rate_limited", rng.uniform(20, 80, total), e2e)
    output_tokens = np.where(failed | (kind == "blocked"), np.nan, output_tokens)
    message = np.where(kind == "rate_limited", "429 RESOURCE_EXHAUSTED: quota <per-minute> exceeded", "")
    message = np.where(kind == "server_error", "500 INTERNAL: backend error", message)
    message = np.where(kind == "timeout", "read timed out after 60 s", message)

    item = rng.integers(0, 200, total)
    expected = np.where(moderation, np.where(item % 3 == 0, "unsafe", "safe"), "")
    # One item in ten is borderline and gets a different verdict now and then: consistency ~90%.
    flip = (item % 10 == 0) & (rng.random(total) < 0.3)
    verdict = np.where(
        moderation & ~failed, np.where(flip, np.where(expected == "safe", "unsafe", "safe"), expected), ""
    )
    verdict = np.where(kind == "blocked", "", verdict)
    vision = scenario == 3
    raw = vision & (rng.random(total) < 0.5)
    variant = np.where(vision, np.where(raw, "raw", "optimized"), "")
    request_bytes = np.where(raw, rng.integers(900_000, 1_600_000, total), rng.integers(500, 4_000, total))
    request_bytes = np.where(vision & ~raw, rng.integers(60_000, 120_000, total), request_bytes)
    e2e = np.where(raw & ~failed, e2e * 1.6, e2e)
    # The model's own image rule (Gemini 3: by media resolution, whatever the size): raw and
    # optimized images cost the same tokens.
    image_tokens = catalogue().models[MODEL].images.tokens_for(None, None)
    prompt_tokens = np.where(vision, image_tokens + 60, rng.integers(20, 300, total)).astype(float)
    thoughts = np.where(failed, np.nan, rng.integers(100, 900, total)).astype(float)
    price = catalogue().models[MODEL].prices
    thoughts_cost = np.nan_to_num(thoughts) * price.output / 1e6
    cost = (prompt_tokens * price.input + np.nan_to_num(output_tokens) * price.output) / 1e6 + thoughts_cost

    names = np.array(SCENARIOS)[scenario]
    frame = pd.DataFrame(
        {
            "scenario": names,
            "model": MODEL,
            "transport": "genai",
            "start_time": start,
            "e2e_ms": e2e,
            "ttft_ms": ttft,
            "first_thought_ms": np.nan,
            "last_chunk_ms": last_chunk,
            "chunk_count": np.where(streaming, 8, 1),
            "prompt_tokens": np.where(failed, np.nan, prompt_tokens),
            "output_tokens": output_tokens,
            "thoughts_tokens": thoughts,
            "cached_tokens": np.nan,
            "finish_reason": np.where(failed, "", "STOP"),
            "block_reason": np.where(kind == "blocked", "SAFETY", ""),
            "http_status": np.where(kind == "rate_limited", 429, np.where(kind == "server_error", 500, 200)),
            "error_kind": kind,
            "error_message": message,
            "attempts": 1,
            "backoff_ms": 0.0,
            "attempt_kinds": np.where(failed, kind, ""),
            "request_bytes": request_bytes,
            "response_bytes": 800,
            "prep_ms": np.where(vision & ~raw, rng.uniform(8, 25, total), 0.0),
            "cost_usd": cost,
            "thoughts_cost_usd": thoughts_cost,
            "cached_saving_usd": 0.0,
            "variant": variant,
            "item_id": np.where(moderation, np.char.add("mod-", item.astype(str)), ""),
            "verdict": verdict,
            "expected": expected,
            "stage": np.array([s["name"] for s in stages])[stage],
            "schedule_lag_ms": np.nan,
            "gaps_ms": np.where(streaming, "31.0 29.5 33.2 30.1 28.7 32.0 30.4", ""),
            "tpot_ms": tpot,
        }
    )
    # The Outcome's other fields (client policy, tiering, batching) at their defaults: a plain run.
    defaults = Outcome(scenario="", model=MODEL, transport="genai", start_time=0.0).as_row()
    for name in OUTCOME_COLUMNS:
        if name not in frame:
            frame[name] = np.nan if defaults[name] is None else defaults[name]
    return frame[list(OUTCOME_COLUMNS)], stages


def _locust_csvs(folder: Path, requests: pd.DataFrame) -> None:
    """Locust-like stats and per-second Aggregated history computed from the same requests."""
    end = requests["start_time"] + requests["e2e_ms"] / 1000.0
    failed = requests["error_kind"].isin(["rate_limited", "server_error", "timeout"])
    duration = float(end.max() - requests["start_time"].min())
    quantiles = [0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]
    labels = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
    rows = []
    groups = [*requests.groupby(["model", "scenario"]), (("", "Aggregated"), requests)]
    for (model, scenario), group in groups:
        times = group["e2e_ms"]
        fails = int(failed[group.index].sum())
        row = {
            "Type": model,
            "Name": scenario,
            "Request Count": len(group),
            "Failure Count": fails,
            "Median Response Time": round(times.median()),
            "Average Response Time": times.mean(),
            "Min Response Time": times.min(),
            "Max Response Time": times.max(),
            "Average Content Size": 800.0,
            "Requests/s": len(group) / duration,
            "Failures/s": fails / duration,
        }
        row.update(
            {label: round(value) for label, value in zip(labels, times.quantile(quantiles), strict=True)}
        )
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "locust_stats.csv", index=False)

    second = np.floor(end).astype(np.int64)
    per_second = pd.DataFrame({"second": second, "failed": failed, "e2e": requests["e2e_ms"]}).groupby(
        "second"
    )
    history = pd.DataFrame({"Requests/s": per_second.size(), "Failures/s": per_second["failed"].sum()})
    users = np.interp(history.index, [START, float(end.max())], [10, 100]).round()
    history.insert(0, "Name", "Aggregated")
    history.insert(0, "Type", "")
    history.insert(0, "User Count", users.astype(int))
    history.insert(0, "Timestamp", history.index)
    # Locust's history percentiles cover about the last 10 s; per-second medians are close enough here.
    for label, quantile in zip(labels, quantiles, strict=True):
        history[label] = per_second["e2e"].quantile(quantile).round().to_numpy()
    history["Total Request Count"] = history["Requests/s"].cumsum()
    history["Total Failure Count"] = history["Failures/s"].cumsum()
    history.to_csv(folder / "locust_stats_history.csv", index=False)
    failures = (
        requests[failed]
        .groupby(["model", "scenario", "error_message"])
        .size()
        .reset_index(name="Occurrences")
    )
    failures.columns = ["Method", "Name", "Error", "Occurrences"]
    failures["First Seen"] = _iso(START)
    failures["Last Seen"] = _iso(float(end.max()))
    failures.to_csv(folder / "locust_failures.csv", index=False)
    (folder / "locust_exceptions.csv").write_text("Count,Message,Traceback,Nodes\n")


def synthesize_results(folder: Path, total: int = 1_000_000, files: int = 4, seed: int = 7) -> Path:
    """Write a complete results folder for `total` requests spread over `files` per-request logs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    requests, stages = _requests(total, rng)
    for index, part in enumerate(np.array_split(np.arange(total), files)):
        requests.iloc[part].to_csv(
            folder / f"requests-synthetic-{1000 + index}.csv", index=False, float_format="%.3f"
        )
    _locust_csvs(folder, requests)
    end = float((requests["start_time"] + requests["e2e_ms"] / 1000.0).max())
    health_times = np.arange(START, stages[-1]["end"], 5.0)
    busy = health_times > stages[-1]["start"] + (stages[-1]["end"] - stages[-1]["start"]) / 2
    pd.DataFrame(
        {
            "timestamp": health_times,
            "node": "worker-1",
            "cpu_percent": np.where(busy, 96.0, 45.0),
            "loop_lag_ms": np.where(busy, 140.0, 4.0),
        }
    ).to_csv(folder / "health.csv", index=False)
    answered = requests[~requests["error_kind"].isin(["rate_limited", "server_error", "timeout"])]
    e2e_p95 = float(answered["e2e_ms"].quantile(0.95, interpolation="higher"))
    ttft_p95 = float(answered["ttft_ms"].dropna().quantile(0.95, interpolation="higher"))
    failed_pct = 100.0 * (len(requests) - len(answered)) / len(requests)

    def gate(expr: str, metric: str, threshold: float, unit: str, value: float) -> dict[str, object]:
        return {
            "expr": expr,
            "metric": metric,
            "threshold": threshold,
            "unit": unit,
            "value": round(value, 4),
            "passed": value <= threshold,
        }

    run = {
        "run_id": f"synthetic-{total}",
        "started_at": _iso(START),
        "ended_at": _iso(end),
        "host": "http://127.0.0.1:8765 (synthetic)",
        "emulator": True,
        "options": {
            "users": 100,
            "spawn_rate": 10,
            "run_time": "stepped",
            "gemini_api_key": "AIzaSyNOTAREALKEY000000000000",
        },
        "versions": {"python": "3.11", "locust": "2.47.0", "google-genai": "synthetic"},
        "shape": {"name": "StepShape", "params": {"steps": [int(r) for r in STAGE_RPS]}},
        "stages": stages,
        "slo": [
            gate("e2e_p95<=4s", "e2e_p95", 4000.0, "ms", e2e_p95),
            gate("error_rate<=1%", "error_rate", 1.0, "%", failed_pct),
            gate("ttft_p95<=1500ms", "ttft_p95", 1500.0, "ms", ttft_p95),
        ],
    }
    (folder / "run.json").write_text(json.dumps(run, indent=2))
    return folder


# The child builds the report as `python -m reports DIR` does, then prints its own peak RSS. VmHWM
# belongs to the child's own address space; ru_maxrss would also count the parent's memory at fork.
_CHILD = """
import sys
from reports.__main__ import main
code = main([sys.argv[1]])
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print("VMHWM_KB", hwm[0] if hwm else "")
sys.exit(code)
"""


def measure_report(folder: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of building the report for `folder` in a fresh child process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(folder)], capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"report build failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    reported = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("VMHWM_KB")]
    if reported and reported[0]:
        return seconds, int(reported[0][0]) / 1024.0
    # No /proc (not Linux): the children's ru_maxrss, an over-estimate that includes this process.
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks report",
        description="Time and peak memory of building a report for a synthetic run (goal: <= 30 s, <= 2 GB at 1M).",
    )
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests in the synthetic run")
    parser.add_argument("--files", type=int, default=4, help="per-request log files (processes)")
    parser.add_argument("--keep", metavar="DIR", help="write the synthetic folder here and keep it")
    args = parser.parse_args(argv)
    if args.requests < 1000 or args.files < 1:
        parser.error("--requests must be >= 1000 and --files >= 1")
    with tempfile.TemporaryDirectory(prefix="report-bench-") as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch) / "run"
        began = time.perf_counter()
        synthesize_results(folder, args.requests, args.files)
        print(
            f"synthesised {args.requests:,} requests in {time.perf_counter() - began:.1f} s: {folder}",
            file=sys.stderr,
        )
        seconds, peak_mb = measure_report(folder)
        size_mb = (folder / "report.html").stat().st_size / 1e6
        print(
            f"report built in {seconds:.1f} s, peak {peak_mb:.0f} MB, report.html {size_mb:.1f} MB",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "report_seconds_1m": round(seconds, 2),
                "report_peak_mb_1m": round(peak_mb, 1),
                "requests": args.requests,
                "report_mb": round(size_mb, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
