"""How closely the arrival shape holds its rate: a real headless run, the rate it reached, its lag.

`python -m benchmarks arrival [--rate 400] [--seconds 14]` runs `locust --shape arrival` with the
raw HTTP transport against the bundled emulator's fast profile, then counts the calls that started
in the steady part of the run (after 2 s, before the last 2 s). A 10 s Poisson count at 400/s has a
relative spread of 1.6 %, so the figure can judge a few per cent. Ends with one JSON line:
target_rps, steady_rps, rate_ratio, lag_p50_ms, lag_p99_ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks arrival", description=__doc__)
    parser.add_argument("--rate", type=float, default=400.0, help="arrivals per second (default 400)")
    parser.add_argument("--seconds", type=int, default=14, help="run time, at least 6 (default 14)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds < 6:
        parser.error("--rate must be above 0 and --seconds at least 6")
    with tempfile.TemporaryDirectory(prefix="arrival-bench-") as tmp:
        out = Path(tmp) / "run"
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "--headless", "--mix", "moderation=1", "--shape", "arrival",
             "--rate", str(args.rate), "--max-users", "200", "-t", f"{args.seconds}s",
             "--emulator-profile", "fast", "--transport", "http", "--results-dir", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=args.seconds + 180,
        )  # fmt: skip
        if proc.returncode != 0:
            print((proc.stdout + proc.stderr)[-3000:], file=sys.stderr)
            return 1
        log = pd.concat(pd.read_csv(path) for path in out.glob("requests-*.csv"))
    t = log["start_time"] - log["start_time"].min()
    window = args.seconds - 4
    steady = float(((t >= 2) & (t < 2 + window)).sum()) / window
    lag = log["schedule_lag_ms"].dropna()
    figures = {
        "target_rps": args.rate,
        "steady_rps": round(steady, 1),
        "rate_ratio": round(steady / args.rate, 4),
        "lag_p50_ms": round(float(lag.quantile(0.5)), 1),
        "lag_p99_ms": round(float(lag.quantile(0.99)), 1),
    }
    print(f"arrival at {args.rate:g}/s: {steady:.1f}/s held ({steady / args.rate:.1%}); lag p50 "
          f"{figures['lag_p50_ms']} ms, p99 {figures['lag_p99_ms']} ms")  # fmt: skip
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
