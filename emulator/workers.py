"""`--workers N`: N serving processes on one port (SO_REUSEPORT), for throughput beyond one core.

A supervisor process binds the port (so --port 0 resolves once), forks N workers that each bind
their own SO_REUSEPORT listening socket, prints the ready line when all of them listen, and stops
them on SIGTERM, when one dies, or when its own parent goes away. Workers die with the supervisor
(PR_SET_PDEATHSIG plus a parent-pid watchdog).

What is shared and what is not:
- GET /emulator/stats merges every worker's counters (each worker publishes a snapshot to a shared
  folder every 0.25 s; the answering worker adds its own live one), so other workers' figures can
  lag by up to 0.25 s.
- POST /emulator/faults, /emulator/stats/reset and /emulator/tokens/expire reach every worker
  within 0.25 s.
- Access tokens: a token one worker issued is good at every other (emulator.auth: the workers
  share the secret it is signed with, drawn by the supervisor before it forks them).
- GET /emulator/sends merges every worker's send stamps, asked for at once: each worker also serves
  on a private Unix socket in the shared folder (worker_socket), where the answering worker asks its
  siblings (WorkerLink.ask_siblings); POST /emulator/sends/reset clears them all the same way. Each
  worker keeps its share of the 100,000 ids (rounded up), so the merged log holds about as many.
- Capacity slots and queue limits are split evenly between workers (rounded up); rate limits are
  enforced in each worker separately. Use one worker when exact quotas or capacity matter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emulator.profiles import Profile

PUBLISH_EVERY_S = 0.25
ASK_TIMEOUT_S = 10.0  # a sibling's send log can be some megabytes of JSON


def worker_socket(shared_dir: str, index: int) -> str:
    return os.path.join(shared_dir, f"worker-{index}.sock")


@dataclass(slots=True)
class WorkerInfo:
    index: int
    count: int
    shared_dir: str
    ready_fd: int
    supervisor_pid: int


def split_capacity(profile: Profile, workers: int) -> None:
    profile.models = {
        name: replace(
            m, capacity=math.ceil(m.capacity / workers), queue_limit=math.ceil(m.queue_limit / workers)
        )
        for name, m in profile.models.items()
    }


class WorkerLink:
    """A worker's view of its siblings, through small JSON files in a shared folder."""

    def __init__(self, info: WorkerInfo) -> None:
        self.info = info
        self.dir = Path(info.shared_dir)
        self.control = self.dir / "control.json"
        self._control_mtime = 0

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    def publish_stats(self, snapshot: dict[str, Any]) -> None:
        self._write(self.dir / f"stats-{self.info.index}.json", snapshot)

    def merged_stats(self, own: dict[str, Any]) -> dict[str, Any]:
        merged = own
        for index in range(self.info.count):
            if index == self.info.index:
                continue
            try:
                other = json.loads((self.dir / f"stats-{index}.json").read_text())
            except (OSError, ValueError):
                continue
            merged = merge(merged, other)
        merged["workers"] = self.info.count
        return merged

    async def ask_siblings(self, method: str, path: str) -> list[dict[str, Any]]:
        """Every other worker's JSON answer to `method path` on its private socket; a sibling that
        does not answer (starting, stopping) is left out."""
        import aiohttp  # here: only the admin routes of --workers need a client

        async def ask(index: int) -> dict[str, Any] | None:
            connector = aiohttp.UnixConnector(path=worker_socket(self.info.shared_dir, index))
            timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT_S)
            try:
                async with (
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                    session.request(method, f"http://worker{path}") as reply,
                ):
                    return await reply.json() if reply.status == 200 else None
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                return None

        others = [i for i in range(self.info.count) if i != self.info.index]
        answers = await asyncio.gather(*(ask(index) for index in others))
        return [answer for answer in answers if answer is not None]

    def read_control(self) -> dict[str, Any] | None:
        """The control file when it changed since the last call, else None."""
        try:
            mtime = self.control.stat().st_mtime_ns
        except OSError:
            return None
        if mtime == self._control_mtime:
            return None
        self._control_mtime = mtime
        try:
            return json.loads(self.control.read_text())
        except (OSError, ValueError):
            return None

    def publish_control(
        self, faults: dict[str, Any], stats_epoch: int, tokens_expired_before_ms: int
    ) -> None:
        control = {
            "faults": faults,
            "stats_epoch": stats_epoch,
            "tokens_expired_before_ms": tokens_expired_before_ms,
        }
        self._write(self.control, control)
        self._control_mtime = self.control.stat().st_mtime_ns  # our own change is already applied


_KEEP_FIRST = {"profile", "time_scale", "seed", "started_at"}


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Sum two stats snapshots key by key (nested dicts too)."""
    out = dict(a)
    for key, value in b.items():
        if key in _KEEP_FIRST and key in out:
            continue
        if key == "uptime_s":
            out[key] = max(out.get(key, 0), value)
        elif isinstance(value, dict):
            out[key] = merge(out.get(key) or {}, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
        else:
            out.setdefault(key, value)
    return out


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)


def run_workers(
    args: argparse.Namespace,
    reserve: socket.socket,
    serve: Callable[[socket.socket, WorkerInfo], None],
    bind: Callable[[str, int, bool], socket.socket],
) -> int:
    """Supervise args.workers forked workers, each running serve(its socket, its WorkerInfo) to
    the end; `reserve` holds the port while they start."""
    host, port = reserve.getsockname()[:2]
    shared_dir = tempfile.mkdtemp(prefix="gemini-emulator-")
    ready_r, ready_w = os.pipe()
    supervisor = os.getpid()
    children: list[int] = []
    for index in range(args.workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_r)
            reserve.close()
            _die_with_parent()
            code = 0
            try:
                sock = bind(host, port, True)
                serve(sock, WorkerInfo(index, args.workers, shared_dir, ready_w, supervisor))
            except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's code
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    os.close(ready_w)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not _wait_ready(ready_r, args.workers, children, timeout=20.0):
            print("emulator: a worker failed to start; see the messages above", file=sys.stderr)
            return 1
        shown = f"[{host}]" if ":" in host else host
        print(f"Gemini emulator listening on http://{shown}:{port}", flush=True)
        while not stopping:
            time.sleep(0.2)
            if args.parent_pid and os.getppid() != args.parent_pid:
                break
            with contextlib.suppress(ChildProcessError):
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid:
                    print(f"emulator: worker {pid} exited; stopping the others", file=sys.stderr)
                    return 1
        return 0
    finally:
        _stop_children(children)
        reserve.close()
        os.close(ready_r)
        shutil.rmtree(shared_dir, ignore_errors=True)


def _wait_ready(fd: int, count: int, children: list[int], timeout: float) -> bool:
    import select

    seen = 0
    deadline = time.monotonic() + timeout
    while seen < count and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.2)
        if readable:
            data = os.read(fd, 64)
            if not data:
                return False
            seen += len(data)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(-1, os.WNOHANG)[0]:
                return False
    return seen >= count


def _stop_children(children: list[int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    alive = set(children)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    alive.discard(pid)
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
