"""How fast is the bundled emulator, and how much headroom does it leave over one load generator?

`python -m benchmarks emulator [--seconds 10] [--workers 1] [--connections 64]`

1. emulator_rps: non-streaming generateContent requests/s the emulator serves (profile `fast`: no
   latency, no quotas), driven by a lean asyncio HTTP/1.1 client in its own process.
2. emulator_chunks_per_s: SSE chunks/s it streams the same way (streamGenerateContent?alt=sse).
   Both also per busy emulator core (rate / the emulator's CPU share), which other processes on a
   shared machine disturb far less than the raw rates: compare those between two versions.
3. What one Locust worker with the fastest transport can drive: one gevent process running the
   suite's raw HTTP transport (users/transports/raw_http.py) against a trivial loopback server that
   returns a canned body of the same size. headroom_vs_http_transport = emulator_rps / that rate.
4. CPU per request on each side: emulator_cpu_ms_per_request (the emulator's processes, user+sys,
   per generateContent request with one request in flight per connection, as the suite's transports
   send; _pipelined: phase 1's, with --pipeline in flight) and client_cpu_ms_per_request (the gevent process of
   phase 3 per call: the trivial server isolates the client's own cost). Goal: the emulator's at
   most half the client's, so a dry run at the suite's top rate measures the suite, not the emulator.
The driver, the emulator and the trivial server share this machine's cores, so every figure is a
floor. Each phase runs --seconds (default 10): about 50 s in all. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from emulator.launcher import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = 256  # distinct prompts, cycled: like a fixture set
# A current model that does not think unasked (default level MINIMAL): thinking would spend the
# 96-token maxOutputTokens below and leave one empty chunk per stream.
MODEL_PATH = "/v1beta/models/gemini-3.5-flash-lite"
# The same model on Vertex AI's project route: each request's bearer token checked (HMAC).
VERTEX_PATH = "/v1/projects/bench/locations/global/publishers/google/models/gemini-3.5-flash-lite"


def request_body(index: int) -> bytes:
    post = f"Post #{index}: the weather was lovely today and the match ended two all. " * 3
    return json.dumps(
        {
            "contents": [{"role": "user", "parts": [{"text": f"Is this post acceptable? {post}"}]}],
            "systemInstruction": {"parts": [{"text": "You are a content moderator."}]},
            "generationConfig": {"maxOutputTokens": 96, "temperature": 0.0},
        }
    ).encode()


def raw_request(path: str, body: bytes, host: str, bearer: str = "") -> bytes:
    auth = f"Authorization: Bearer {bearer}" if bearer else "x-goog-api-key: bench-key"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# ---- lean asyncio driver (runs in a child process) ---------------------------------------------


async def _drive(
    url: str, path: str, seconds: float, connections: int, pipeline: int, bearer: str = ""
) -> dict[str, Any]:
    """Keep `connections` keep-alive connections busy; each has `pipeline` requests in flight
    (HTTP/1.1 pipelining), so the driver spends fewer system calls per request than the server."""
    host_port = url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    requests = [raw_request(path, request_body(i), host_port, bearer) for i in range(PROMPTS)]
    counts = {"ok": 0, "errors": 0, "chunks": 0, "bytes": 0}
    deadline = time.monotonic() + seconds

    async def read_response(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        ok = head.startswith(b"HTTP/1.1 200")
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                counts["chunks"] += data.count(b"data: ")
                counts["bytes"] += size
        else:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            counts["bytes"] += len(await reader.readexactly(length))
        counts["ok" if ok else "errors"] += 1

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        n = offset
        while time.monotonic() < deadline:
            writer.write(b"".join(requests[(n + i) % PROMPTS] for i in range(pipeline)))
            n += pipeline
            for _ in range(pipeline):
                await read_response(reader)
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection(i * 7) for i in range(connections)))
    counts["seconds"] = time.monotonic() - started
    return counts


# ---- trivial server and gevent driver (the stand-in for one Locust worker) ---------------------


def _trivial_server(body_size: int) -> None:
    """Answer every POST with a canned 200 JSON body; print the port once listening."""
    canned_body = (
        b'{"candidates":[{"content":{"parts":[{"text":"' + b"x" * max(0, body_size - 60) + b'"}]}}]}'
    )
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(canned_body)).encode()
        + b"\r\n\r\n"
        + canned_body
    )

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                length = 0
                if b"content-length:" in head:
                    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(reply)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(serve())


def _gevent_drive(url: str, seconds: float, greenlets: int) -> dict[str, Any]:
    from gevent import monkey

    monkey.patch_all()
    import gevent

    from users.call import CallSpec, CallTimer
    from users.errors import CallError
    from users.transports.raw_http import RawHttpTransport

    model = MODEL_PATH.rsplit("/", 1)[1]
    specs = [
        CallSpec(scenario="bench", model=model, parts=(f"Post {i}: is this fine?",)) for i in range(PROMPTS)
    ]
    counts = {"ok": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    def user(offset: int) -> None:
        transport = RawHttpTransport(base_url=url, api_key="bench-key", timeout_s=10)
        n = offset
        while time.monotonic() < deadline:
            try:
                transport.call(specs[n % PROMPTS], CallTimer())
                counts["ok"] += 1
            except CallError:
                counts["errors"] += 1
            n += 1
        transport.close()

    started, cpu_started = time.monotonic(), time.process_time()
    gevent.joinall([gevent.spawn(user, i) for i in range(greenlets)], timeout=seconds + 30)
    counts["seconds"] = time.monotonic() - started
    counts["cpu_s"] = time.process_time() - cpu_started  # user+sys of this whole process
    return counts


# ---- orchestration -----------------------------------------------------------------------------


def _child(*args: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.emulator", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            total += times.user + times.system
            for child in proc.children(recursive=True):
                ct = child.cpu_times()
                total += ct.user + ct.system
        except psutil.Error:
            pass
    return total


def _emulator_token(url: str) -> str:
    """An access token from the emulator's own token endpoint, the way a Vertex run gets one."""
    from google.auth.transport.requests import Request

    from users.auth import service_account_credentials, throwaway_service_account

    credentials = service_account_credentials(throwaway_service_account(f"{url}/token", "bench"))
    credentials.refresh(Request())
    return str(credentials.token)


def measure_emulator(args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    with EmulatorProcess(profile="fast", time_scale=0.0, workers=args.workers) as emu:
        pid = emu.pid or 0
        # Warm the answer cache and the connections first, so the figures are steady state.
        _child(
            "--drive", emu.url, MODEL_PATH + ":generateContent", "2", str(args.connections), "1", timeout=60
        )
        bearer = _emulator_token(emu.url)
        for name, path, pipeline, token in (
            ("generate", MODEL_PATH + ":generateContent", args.pipeline, ""),
            ("stream", MODEL_PATH + ":streamGenerateContent?alt=sse", args.pipeline, ""),
            # One request in flight per connection, as the suite's transports send: the CPU per
            # request that a dry run at the suite's top rate costs the emulator.
            ("single", MODEL_PATH + ":generateContent", 1, ""),
            # The same on Vertex's project route, its bearer token checked on every request.
            ("vertex", VERTEX_PATH + ":generateContent", 1, bearer),
        ):
            cpu_before = _cpu_seconds([pid])
            counts = _child(
                "--drive",
                emu.url,
                path,
                str(args.seconds),
                str(args.connections),
                str(pipeline),
                token,
                timeout=args.seconds + 60,
            )
            cpu_s = _cpu_seconds([pid]) - cpu_before
            cpu = cpu_s / counts["seconds"]
            results[f"{name}_cpu_ms_per_request"] = cpu_s * 1000 / max(1, counts["ok"] + counts["errors"])
            results[f"{name}_rps"] = counts["ok"] / counts["seconds"]
            results[f"{name}_chunks_per_s"] = counts["chunks"] / counts["seconds"]
            results[f"{name}_errors"] = counts["errors"]
            results[f"{name}_body_bytes"] = counts["bytes"] / max(1, counts["ok"])
            results[f"{name}_emulator_cpu"] = cpu
    return results


def measure_gevent_standin(args: argparse.Namespace, body_size: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.emulator", "--trivial-server", str(body_size)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        port = int(server.stdout.readline())
        counts = _child(
            "--gevent-drive",
            f"http://127.0.0.1:{port}",
            str(args.seconds),
            str(args.greenlets),
            timeout=args.seconds + 60,
        )
    finally:
        server.terminate()
        server.wait(timeout=5)
    calls = max(1, counts["ok"] + counts["errors"])
    return {
        "gevent_rps": counts["ok"] / counts["seconds"],
        "gevent_errors": counts["errors"],
        "gevent_cpu": counts["cpu_s"] / counts["seconds"],
        "client_cpu_ms_per_request": counts["cpu_s"] * 1000 / calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="emulator serving processes (default 1)")
    parser.add_argument("--connections", type=int, default=64, help="driver connections (default 64)")
    parser.add_argument(
        "--pipeline", type=int, default=4, help="requests in flight per connection (default 4)"
    )
    parser.add_argument(
        "--greenlets", type=int, default=64, help="greenlets driving the http transport (default 64)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 60:
        parser.error("--seconds must be between 1 and 60")
    emulator = measure_emulator(args)
    standin = measure_gevent_standin(args, int(emulator["generate_body_bytes"]))
    headroom = emulator["generate_rps"] / standin["gevent_rps"] if standin["gevent_rps"] else 0.0
    rows = [
        (
            "emulator, generateContent (requests/s)",
            emulator["generate_rps"],
            emulator["generate_emulator_cpu"],
        ),
        ("emulator, streamed SSE chunks/s", emulator["stream_chunks_per_s"], emulator["stream_emulator_cpu"]),
        ("emulator, streamed requests/s", emulator["stream_rps"], emulator["stream_emulator_cpu"]),
        (
            "suite's http transport, 1 gevent process vs trivial server (req/s)",
            standin["gevent_rps"],
            None,
        ),
    ]
    emulator_ms = emulator["single_cpu_ms_per_request"]
    client_ms = standin["client_cpu_ms_per_request"]
    cpu_ratio = emulator_ms / client_ms if client_ms else 0.0
    vertex_ms = emulator["vertex_cpu_ms_per_request"]
    print(
        f"Emulator benchmark: {os.cpu_count()} cores, emulator --workers {args.workers}, {args.seconds:.0f} s per phase"
    )
    print(f"{'measure':<72} {'rate':>10} {'emu CPU':>8}")
    for name, value, cpu in rows:
        cpu_text = f"{cpu * 100:7.0f}%" if cpu is not None else "       -"
        print(f"{name:<72} {value:>10,.0f} {cpu_text}")
    per_core = (
        emulator["generate_rps"] / emulator["generate_emulator_cpu"]
        if emulator["generate_emulator_cpu"]
        else 0
    )
    stream_per_core = (
        emulator["stream_rps"] / emulator["stream_emulator_cpu"] if emulator["stream_emulator_cpu"] else 0
    )
    print(f"emulator req/s per busy emulator core (req/s / emu CPU): {per_core:,.0f}")
    print(f"emulator streamed req/s per busy emulator core: {stream_per_core:,.0f}")
    print(f"headroom = emulator req/s / http transport req/s = {headroom:.2f}x (goal >= 3x)")
    print(
        f"CPU per request: emulator {emulator_ms:.4f} ms, http transport {client_ms:.4f} ms per call "
        f"(its process at {standin['gevent_cpu'] * 100:.0f}% of a core): ratio {cpu_ratio:.2f} (goal <= 0.5)"
    )
    print(
        f"Vertex project route (bearer token checked per request): {vertex_ms:.4f} ms of emulator CPU per "
        f"request, {vertex_ms / emulator_ms if emulator_ms else 0:.2f}x the Developer API route's"
    )
    if emulator["generate_emulator_cpu"] < 0.8 * args.workers:
        print(
            "note: the emulator was not CPU-bound (the driver or other processes on this machine held "
            "the cores); its real ceiling is nearer the per-core figure times --workers"
        )
    if os.cpu_count() and os.cpu_count() < 2 * (args.workers + 1):
        print(
            f"note: {os.cpu_count()} cores are shared by the emulator and the driver; headroom is "
            "only meaningful with a core for each, e.g. --workers 3 on an 8-core machine"
        )
    errors = (
        emulator["generate_errors"]
        + emulator["stream_errors"]
        + emulator["vertex_errors"]
        + standin["gevent_errors"]
    )
    if errors:
        print(f"warning: {errors:.0f} non-200 answers during the benchmark")
    summary = {
        "emulator_rps": round(emulator["generate_rps"], 1),
        "emulator_chunks_per_s": round(emulator["stream_chunks_per_s"], 1),
        "headroom_vs_http_transport": round(headroom, 3),
        "http_transport_rps": round(standin["gevent_rps"], 1),
        "emulator_rps_per_core": round(per_core, 1),
        "emulator_cpu_ms_per_request": round(emulator_ms, 4),  # one request in flight per connection
        "emulator_cpu_ms_per_request_pipelined": round(emulator["generate_cpu_ms_per_request"], 4),
        "client_cpu_ms_per_request": round(client_ms, 4),
        "emulator_to_client_cpu": round(cpu_ratio, 3),
        "vertex_cpu_ms_per_request": round(vertex_ms, 4),  # Vertex project route, one in flight
        "vertex_to_developer_cpu": round(vertex_ms / emulator_ms, 3) if emulator_ms else 0.0,
        # Per busy core: steadier than the raw rates on a shared machine, so compare these.
        "emulator_stream_rps_per_core": round(stream_per_core, 1),
        "emulator_workers": args.workers,
    }
    print(json.dumps(summary))
    return 0


def _child_main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "--drive":
        url, path, seconds, connections, pipeline = (
            argv[1],
            argv[2],
            float(argv[3]),
            int(argv[4]),
            int(argv[5]),
        )
        bearer = argv[6] if len(argv) > 6 else ""
        print(json.dumps(asyncio.run(_drive(url, path, seconds, connections, pipeline, bearer))))
    elif mode == "--trivial-server":
        _trivial_server(int(argv[1]))
    elif mode == "--gevent-drive":
        print(json.dumps(_gevent_drive(argv[1], float(argv[2]), int(argv[3]))))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--drive", "--trivial-server", "--gevent-drive"):
        sys.exit(_child_main(sys.argv[1:]))
    sys.exit(main())
