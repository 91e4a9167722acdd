"""What a client policy costs the load generator per attempt: admission and settlement, no waiting.

`python -m benchmarks policies [--attempts 200000] [--rounds 3]`

Each chain (aimd, breaker, limiter, and all three) admits and settles `--attempts` answered attempts
in one greenlet with limits and rates far above what is asked of them, so nothing waits: what is
left is the bookkeeping every call of a run pays. Against the same loop with no policy (the
`retry` baseline: nothing to do), in the same process and the same rounds; best of --rounds
interleaved rounds. The last line is JSON: microseconds per attempt and each chain's share of one
core at 1,000 calls/s.
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

from users.policies.chain import Attempt, PolicyChain, Settlement
from users.policies.options import PolicySettings
from users.policies.runtime import build_chain, policy_names

MODEL = "gemini-3.8-flash"
CHAINS = ("aimd", "breaker", "limiter", "limiter+aimd+breaker")
ANSWER = Settlement(sent=True, kind="", http_status=200, prompt_tokens=120)


class _NoLog:
    def event(self, component: str, event: str, value: float, detail: str = "") -> None:
        pass


def _chain(policy: str) -> PolicyChain | None:
    # Limits far above the load: the benchmark measures bookkeeping, never a wait.
    options = SimpleNamespace(
        client_policy=policy, aimd_start="100000", aimd_min="1", aimd_max="100000", aimd_decrease="0.5",
        breaker_window="10", breaker_threshold="0.5", breaker_min_calls="10", breaker_cooldown="5",
        breaker_fallback="fail", limit_rpm="1000000000", limit_tpm="1000000000000", quota_tier="free",
    )  # fmt: skip
    settings = PolicySettings.from_options(options, model=MODEL, known=policy_names())
    return build_chain(settings, MODEL, time.monotonic, time.sleep, _NoLog())


def _seconds(chain: PolicyChain | None, attempts: int) -> float:
    started = time.perf_counter()
    for _ in range(attempts):
        ticket = Attempt("moderation", MODEL, 600)
        if chain is not None:
            chain.admit(ticket)
            chain.settle(ticket, ANSWER)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks policies", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--attempts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.attempts < 1 or args.rounds < 1:
        parser.error("--attempts and --rounds must be at least 1")
    best: dict[str, float] = {}
    for _ in range(args.rounds):  # interleaved: other work on the machine slows every chain alike
        for name in ("retry", *CHAINS):
            chain = None if name == "retry" else _chain(name)
            seconds = _seconds(chain, args.attempts)
            best[name] = min(best.get(name, float("inf")), seconds)
    baseline_us = best["retry"] / args.attempts * 1e6
    figures: dict[str, Any] = {"attempts": args.attempts, "rounds": args.rounds, "baseline_us": baseline_us}
    print(f"{'policy':24} {'us/attempt':>11} {'over baseline':>14} {'core % at 1,000 calls/s':>24}")
    for name in CHAINS:
        per_us = best[name] / args.attempts * 1e6
        extra = per_us - baseline_us
        figures[name] = {"us_per_attempt": round(per_us, 2), "core_pct_at_1000_per_s": round(extra / 10, 3)}
        print(f"{name:24} {per_us:11.2f} {extra:14.2f} {extra / 10:24.3f}")
    print(json.dumps(figures))
    return 0
