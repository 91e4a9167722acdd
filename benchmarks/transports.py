"""What each transport costs the load generator: throughput, timing accuracy and memory.

`python -m benchmarks transports [--seconds 4] [--rounds 2] [--ttft-seconds 6] [--greenlets 32] [--users 1000]`

1. Throughput: non-streaming calls/s from one gevent process with N greenlets against the emulator
   (profile `fast`: no latency): each transport; a bare FastHttpUser-style geventhttpclient POST of
   the same body; bare google-genai and google-generativeai SDK calls. Best of --rounds interleaved
   rounds (other work on the machine only ever slows a round down). Client CPU ms per call too:
   it stays meaningful when the emulator, sharing the cores, is the bottleneck.
2. TTFT error at 10 and 500 concurrent streams (benchmarks/transport_timing.py): measured at read
   time and at the kernel's arrival stamp, against the emulator's own send stamps; with the hub lag
   (how late gevent wakes a 10 ms sleeper) that tells when the client itself is late.
3. Memory: RSS growth per user while every user holds one open stream, and CPU ms to build a user.
google-genai variants: `genai` = one client per user sharing the process's SSL context (as
shipped), `genai_shared` = one transport for the whole process (its pool opens at most 100
connections, so users beyond that queue).
Every phase runs in its own gevent-patched subprocess. About 4 minutes; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks import transport_timing as timing

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-transports-key"
# A current model that does not think unasked (default level MINIMAL): thinking would spend the
# 96-token maxOutputTokens and leave no text (the bare legacy SDK's `.text` then raises).
MODEL = "gemini-3.5-flash-lite"
STREAM_MODEL = "bench-stream"  # first chunk at 300 ms, then 9 more 100 ms apart
LONG_MODEL = "bench-long"  # first chunk at 700 ms, then 9 more 500 ms apart: streams stay open
EXPECTED_TTFT_MS = timing.EXPECTED_TTFT_MS
PROMPTS = 64
CPU = "cpu_ms_per_call"
SYSTEM = "You are a content moderator."
THROUGHPUT_CLIENTS = (
    "fasthttp",
    "http",
    "bare_genai",
    "genai",
    "genai_shared",
    "legacy",
    "bare_legacy",
)
TTFT_PHASES = (("http", 10), ("http", 500), ("genai", 10), ("genai", 500))
TTFT_PHASES += (("legacy", 10), ("legacy", 500))
# name -> user cap (0: --users). genai_shared: its pool opens at most 100 connections (httpx default).
MEMORY_CLIENTS = {"http": 0, "genai": 0, "genai_shared": 100, "legacy": 0}


def _exact_model(tokens_per_s: float) -> dict[str, Any]:
    # 200 ms to first token + 24 tokens decoded = the first chunk; exactly 240 tokens in 10 chunks.
    # No slow path and one decode rate: every first chunk is due at exactly 300 ms.
    exact = dict(
        ttft_median_ms=200.0, ttft_sigma=0.0, ttft_tail_share=0.0, prompt_tokens_per_s=0.0,
        output_rate_sigma=0.0, output_jitter=0.0, load_slowdown=0.0,
    )  # fmt: skip
    sizes = dict(chunk_tokens=24, output_tokens_median=240.0, output_tokens_sigma=0.0, output_tokens_min=24)
    room = dict(thinking=False, capacity=100_000, queue_limit=100_000)
    return {**exact, **sizes, **room, "output_tokens_per_s": tokens_per_s}


EMULATOR_CONFIG = {"models": {STREAM_MODEL: _exact_model(240.0), LONG_MODEL: _exact_model(48.0)}}


# ---- children: run in a gevent-patched subprocess -----------------------------------------------


def _specs(model: str, stream: bool) -> list[Any]:
    from users.call import CallSpec

    post = "the weather was lovely today and the match ended two all. " * 3
    return [
        CallSpec(
            scenario="bench",
            model=model,
            parts=(f"Is this post acceptable? Post #{i}: {post}",),
            stream=stream,
            system_instruction=SYSTEM,
            max_output_tokens=96 if model == MODEL else 240,
            temperature=0.0,
        )
        for i in range(PROMPTS)
    ]


def _bare(name: str, url: str) -> Any:
    """A user making bare calls: `call(spec, timer)` raises unless the reply was a 200 with text."""
    from users.call import rest_payload

    if name == "fasthttp":
        from geventhttpclient import HTTPClient

        host, port = url.removeprefix("http://").rsplit(":", 1)
        client = HTTPClient(host, int(port), concurrency=1, connection_timeout=10, network_timeout=60)
        headers = {"x-goog-api-key": API_KEY, "Content-Type": "application/json"}

        def post(spec: Any, timer: Any) -> None:
            response = client.post(
                f"/v1beta/models/{spec.model}:generateContent", rest_payload(spec), headers
            )
            response.read()
            if response.status_code != 200:
                raise RuntimeError(response.status_code)

        return SimpleNamespace(call=post)
    if name == "bare_genai":
        from google import genai
        from google.genai import types

        client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=url, timeout=60_000))
        config = types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=96, temperature=0.0)
        generate = client.models.generate_content  # keep `client` referenced: its __del__ closes it
        return SimpleNamespace(
            client=client,
            call=lambda spec, timer: generate(model=spec.model, contents=spec.parts[0], config=config).text,
        )
    import google.generativeai as legacy  # bare_legacy: what a legacy app writes

    legacy.configure(api_key=API_KEY, transport="rest", client_options={"api_endpoint": url})
    model = legacy.GenerativeModel(MODEL, system_instruction=SYSTEM)
    config, options = {"max_output_tokens": 96, "temperature": 0.0}, {"retry": None, "timeout": 60}
    return SimpleNamespace(
        call=lambda spec, timer: (
            model.generate_content(spec.parts[0], generation_config=config, request_options=options).text
        )
    )


def _users(name: str, url: str, count: int) -> list[Any]:
    """`count` users' callers: one transport each, or one for all for `genai_shared`."""
    if name == "genai_shared":
        return [_users("genai", url, 1)[0]] * count
    if name in ("fasthttp", "bare_genai", "bare_legacy"):
        return [_bare(name, url) for _ in range(count)]
    from users.transports import make_transport

    return [make_transport(name, base_url=url, api_key=API_KEY, timeout_s=60) for _ in range(count)]


class Meter:
    """Wall time, this process's CPU, the emulator's CPU and the gevent hub's lag over a window."""

    def __init__(self, emulator_pid: int) -> None:
        import gevent
        import psutil

        self.emulator = psutil.Process(emulator_pid)
        self.lags: list[float] = []
        self.cpu, self.emu_cpu, self.started = time.process_time(), self._emu(), time.perf_counter()
        self._greenlet = gevent.spawn(self._lag)

    def _emu(self) -> float:
        times = self.emulator.cpu_times()
        return times.user + times.system

    def _lag(self) -> None:
        import gevent

        while True:
            started = time.perf_counter()
            gevent.sleep(0.01)
            self.lags.append((time.perf_counter() - started) * 1000 - 10.0)

    def stop(self) -> dict[str, Any]:
        self._greenlet.kill()
        elapsed = time.perf_counter() - self.started
        return {
            "elapsed": elapsed,
            "cpu_s": time.process_time() - self.cpu,
            "client_cpu_pct": (time.process_time() - self.cpu) / elapsed * 100,
            "emulator_cpu_pct": (self._emu() - self.emu_cpu) / elapsed * 100,
            "hub_lag_p99_ms": timing.pct(self.lags, 99),
        }


def _run_users(users: list[Any], specs: list[Any], seconds: float) -> dict[str, Any]:
    """Every user calls in a loop until the deadline; returns the counts."""
    import gevent

    from users.call import CallTimer

    out: dict[str, Any] = {"ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds

    def user(index: int) -> None:
        n = index
        while time.perf_counter() < deadline:
            try:
                users[index].call(specs[n % PROMPTS], CallTimer())
                out["ok"] += 1
            except Exception:  # noqa: BLE001 - counted; the benchmark goes on
                out["errors"] += 1
            n += 1

    gevent.joinall([gevent.spawn(user, i) for i in range(len(users))], timeout=seconds + 60)
    return out


def _warm_up(users: list[Any], specs: list[Any]) -> None:
    """Every prompt once (the emulator caches answers), every user connected, lazy imports done."""
    import gevent

    from users.call import CallTimer

    jobs = [(users[i % len(users)], spec) for i, spec in enumerate(specs)]
    jobs += [(user, specs[0]) for user in users[PROMPTS:]]
    gevent.joinall([gevent.spawn(user.call, spec, CallTimer()) for user, spec in jobs])


def child_throughput(
    client: str, url: str, seconds: float, greenlets: int, emulator_pid: int
) -> dict[str, Any]:
    users, specs = _users(client, url, greenlets), _specs(MODEL, stream=False)
    _warm_up(users, specs)
    meter = Meter(emulator_pid)
    counts = _run_users(users, specs, seconds)
    m = meter.stop()
    calls = counts["ok"] + counts["errors"]
    return {"rps": counts["ok"] / m["elapsed"], CPU: m["cpu_s"] * 1000 / max(1, calls), **counts, **m}


def child_ttft(
    transport: str, url: str, seconds: float, concurrency: int, emulator_pid: int
) -> dict[str, Any]:
    from benchmarks import transport_timing

    users, specs = _users(transport, url, concurrency), _specs(STREAM_MODEL, stream=True)
    _warm_up(users, specs)
    meter = Meter(emulator_pid)
    counts = transport_timing.run_phase(users, specs, url, seconds)
    return {**counts, **meter.stop()}


def child_memory(client: str, url: str, users: int) -> dict[str, Any]:
    import gevent
    import psutil

    from users.call import CallTimer

    process, specs = psutil.Process(), _specs(LONG_MODEL, stream=True)
    _users(client, url, 1)[0].call(specs[0], CallTimer())  # imports and first-use caches
    base, started = process.memory_info().rss, time.process_time()
    callers = _users(client, url, users)
    construct_ms = (time.process_time() - started) * 1000 / users
    greenlets = [gevent.spawn(user.call, specs[i % PROMPTS], CallTimer()) for i, user in enumerate(callers)]
    peak = base
    while not all(g.dead for g in greenlets):
        peak = max(peak, process.memory_info().rss)
        gevent.sleep(0.05)
    done = sum(1 for g in greenlets if g.successful())
    return dict(users=users, mb_per_user=(peak - base) / 2**20 / users, construct_ms=construct_ms, done=done)


def child_main() -> None:
    """Entry point of a child: argv[1] is a JSON object {"phase": ..., **arguments}."""
    args = json.loads(sys.argv[1])
    phase = {"throughput": child_throughput, "ttft": child_ttft, "memory": child_memory}[args.pop("phase")]
    sys.stdout.write("RESULT " + json.dumps(phase(**args)) + "\n")


# ---- parent: orchestration and report -----------------------------------------------------------


def _child(args: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    bootstrap = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "from benchmarks.transports import child_main; child_main()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    what = f"{args['phase']} {args.get('client') or args.get('transport')}"
    try:
        command = [sys.executable, "-c", bootstrap, json.dumps(args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f"  ! {what} did not finish in {timeout:.0f} s", file=sys.stderr)
        return None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"  ! {what} failed: {' | '.join(done.stderr.strip().splitlines()[-3:])}", file=sys.stderr)
    return None


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str = "rps") -> float | None:
    return _r(a[key] / b[key], 2) if a and b and b.get(key) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks transports", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each throughput run")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds; the best is kept")
    parser.add_argument("--ttft-seconds", type=float, default=6.0, help="length of each TTFT phase")
    parser.add_argument("--greenlets", type=int, default=32, help="concurrent users in throughput runs")
    parser.add_argument("--users", type=int, default=1000, help="users holding a stream in memory phases")
    args = parser.parse_args(argv)
    if min(args.seconds, args.ttft_seconds) <= 0 or min(args.rounds, args.greenlets, args.users) < 1:
        parser.error("--seconds, --rounds, --ttft-seconds, --greenlets and --users must be positive")

    import tempfile

    from emulator.launcher import EmulatorProcess

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config:
        json.dump(EMULATOR_CONFIG, config)
    emu = EmulatorProcess(profile="fast", config=config.name, time_scale=1.0, seed=1)
    throughput: dict[str, dict[str, Any]] = {}
    ttft: dict[str, dict[str, dict[str, Any]]] = {}
    memory: dict[str, dict[str, Any]] = {}
    try:
        url = emu.start()
        common = {"url": url, "emulator_pid": emu.pid}
        for _ in range(args.rounds):
            for client in THROUGHPUT_CLIENTS:
                phase = dict(
                    phase="throughput", client=client, seconds=args.seconds, greenlets=args.greenlets
                )
                res = _child({**phase, **common}, args.seconds + 180)
                if res and res["rps"] > throughput.get(client, {}).get("rps", -1):
                    throughput[client] = res
        print(
            f"Throughput, non-streaming, {args.greenlets} greenlets, best of {args.rounds} x {args.seconds:g} s"
        )
        print(
            f"  {'client':13} {'req/s':>7} {'CPU ms/call':>11} {'client CPU':>10} {'emulator CPU':>12} errors"
        )
        for client, res in throughput.items():
            print(
                f"  {client:13} {res['rps']:7.0f} {res['cpu_ms_per_call']:11.3f} {res['client_cpu_pct']:9.0f}%"
                f" {res['emulator_cpu_pct']:11.0f}% {res['errors']}"
            )

        print(
            f"TTFT error = measured - {EXPECTED_TTFT_MS:.0f} ms (fixed server first-chunk time), ms, {args.ttft_seconds:g} s;"
            " read = when a greenlet got the chunk, arrival = the kernel's receive stamp,"
            " net = arrival error - the emulator's own send lateness (its send stamp - when it was due)"
        )
        print(timing.HEADER)
        for transport, level in TTFT_PHASES:
            phase = dict(phase="ttft", transport=transport, concurrency=level, seconds=args.ttft_seconds)
            res = _child({**phase, **common}, args.ttft_seconds + 240) or {}
            row = timing.summarise(res.get("figures", {}))
            row.update({k: _r(res.get(k)) for k in ("hub_lag_p99_ms", "client_cpu_pct", "emulator_cpu_pct")})
            ttft.setdefault(transport, {})[str(level)] = row
            print(timing.line(transport, level, row))

        print("Memory: every user holds one open stream (about 5 s long)")
        for client, cap in MEMORY_CLIENTS.items():
            users = min(cap or args.users, args.users)
            res = _child({"phase": "memory", "client": client, "url": url, "users": users}, 400)
            if res:
                memory[client] = res
                print(
                    f"  {client:13} {res['mb_per_user']:.3f} MB/user at {users} users ({res['done']} streams done),"
                    f" {res['construct_ms']:.2f} ms CPU to build one user"
                )
    finally:
        emu.stop()
        emu.close_logs()
        os.unlink(config.name)

    def by_transport(key: str) -> dict[str, dict[str, Any]]:
        return {t: {level: row[key] for level, row in rows.items()} for t, rows in ttft.items()}

    summary = {
        "http_vs_fasthttp": _ratio(throughput.get("http"), throughput.get("fasthttp")),
        "genai_vs_bare_sdk": _ratio(throughput.get("genai"), throughput.get("bare_genai")),
        "legacy_vs_bare_sdk": _ratio(throughput.get("legacy"), throughput.get("bare_legacy")),
        "http_vs_fasthttp_cpu": _ratio(throughput.get("fasthttp"), throughput.get("http"), CPU),
        "genai_vs_bare_sdk_cpu": _ratio(throughput.get("bare_genai"), throughput.get("genai"), CPU),
        # Read time (what a generator without kernel stamps measures), kernel arrival, and arrival
        # with the emulator's own send lateness taken off (net): see benchmarks/transport_timing.py.
        "ttft_error_ms_p99": by_transport("read_error_p99"),
        "ttft_error_ms_p50": by_transport("read_error_p50"),
        "ttft_arrival_error_ms_p99": by_transport("arrival_error_p99"),
        "ttft_arrival_error_ms_p50": by_transport("arrival_error_p50"),
        "ttft_net_error_ms_p99": by_transport("net_error_p99"),
        "server_send_lateness_ms_p99": by_transport("server_lateness_p99"),
        "request_lateness_ms_p99": by_transport("request_lateness_p99"),
        "read_delay_ms_p99": by_transport("read_delay_p99"),
        "read_delay_ms_p50": by_transport("read_delay_p50"),
        "mb_per_stream_user": {k: _r(v["mb_per_user"], 3) for k, v in memory.items()},
        "build_ms_per_user": {k: _r(v["construct_ms"], 2) for k, v in memory.items()},
        "rps": {k: _r(v["rps"], 0) for k, v in throughput.items()},
        CPU: {k: _r(v[CPU], 3) for k, v in throughput.items()},
        "greenlets": args.greenlets,
        "users": args.users,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
