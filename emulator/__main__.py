"""`python -m emulator --host 127.0.0.1 --port 0 [--profile NAME] [--config FILE] [--time-scale X] [--seed N]
[--workers N] [--loop uvloop|asyncio] [--token-lifetime SECONDS]`

`--listen-fd N` serves on a listening socket the parent bound and passed down instead: the parent
knows the URL at once, and connections made before the emulator is up wait in the backlog.

Prints exactly one line `Gemini emulator listening on http://HOST:PORT` (flushed) once it accepts
connections. Exits on SIGTERM/SIGINT, and by itself when its parent process goes away
(--parent-pid or EMULATOR_PARENT_PID), so an emulator started by a load test never outlives it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from emulator.fastpath import FastSite
from emulator.profiles import DEFAULT_PROFILE, PROFILES, ConfigError, load_profile
from emulator.server import Emulator, build_app
from emulator.workers import (
    PUBLISH_EVERY_S,
    WorkerInfo,
    WorkerLink,
    run_workers,
    split_capacity,
    worker_socket,
)

PARENT_PID_ENV = "EMULATOR_PARENT_PID"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Bundled Gemini API emulator")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"named profile: {', '.join(PROFILES)}")
    parser.add_argument("--config", default=None, help="JSON file merged over the profile")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies every delay and the quota window"
    )
    parser.add_argument("--seed", type=int, default=None, help="makes latency draws reproducible")
    parser.add_argument(
        "--workers", type=int, default=1, help="serving processes sharing the port (SO_REUSEPORT)"
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=None,
        help="event loop (default: uvloop when installed, 5-10%% less CPU per request; else asyncio)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=None,
        help="real seconds an access token from POST /token lives (default: the config's "
        "token_lifetime, else 3599 as Google's)",
    )
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    parser.add_argument(
        "--listen-fd",
        type=int,
        default=None,
        help="serve on this inherited, already listening socket (--host and --port are then ignored)",
    )
    args = parser.parse_args(argv)
    if args.time_scale < 0:
        parser.error("--time-scale must be >= 0 (1 = real time, 0.01 = 100x faster)")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.token_lifetime is not None and args.token_lifetime < 1:
        parser.error("--token-lifetime must be >= 1 second")
    if args.listen_fd is not None and args.workers != 1:
        parser.error("--listen-fd serves one process: drop --workers")
    if args.parent_pid is None and os.environ.get(PARENT_PID_ENV, "").isdigit():
        args.parent_pid = int(os.environ[PARENT_PID_ENV])
    # Not an option: drawn here, before any worker is forked, every worker signs and checks access
    # tokens with it (emulator.auth), so a token one issued is good at all.
    args.token_secret = secrets.token_bytes(32)
    return args


def loop_factory(name: str | None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, unless asyncio's is asked for or uvloop is not installed (it has no Windows
    build): None means asyncio's. ImportError when uvloop was asked for by name and is missing."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def run_loop(
    main: Coroutine[Any, Any, None], factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> None:
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Fallback for PR_SET_PDEATHSIG: when the parent dies we are re-parented, so getppid changes."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
            return
        await asyncio.sleep(0.5)


def bind_socket(host: str, port: int, reuse_port: bool, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(4096)
    sock.setblocking(False)
    return sock


async def sync_with_siblings(emulator: Emulator, link: WorkerLink, stop: asyncio.Event) -> None:
    """--workers: publish our counters, pick up fault changes and stats resets made elsewhere."""
    epoch = 0
    while not stop.is_set():
        control = link.read_control()
        if control is not None:
            emulator.generator.faults.update(
                control["faults"]["rates"] | control["faults"]["params"], reset=True
            )
            emulator.tokens.expire_all(control.get("tokens_expired_before_ms", 0))
            if control["stats_epoch"] != epoch:
                epoch = control["stats_epoch"]
                emulator.reset_stats(epoch)
        link.publish_stats(emulator.stats_snapshot())
        await asyncio.sleep(PUBLISH_EVERY_S)


async def serve(
    args: argparse.Namespace, sock: socket.socket, announce: bool, worker: WorkerInfo | None = None
) -> None:
    profile = load_profile(args.profile, args.config)
    if args.token_lifetime is not None:
        profile.token_lifetime = args.token_lifetime
    if worker is not None:
        split_capacity(profile, worker.count)
    # Workers get their own seed each, or they would all draw the same latencies.
    seed = args.seed if worker is None or args.seed is None else args.seed + 1000 * worker.index
    emulator = Emulator(profile, time_scale=args.time_scale, seed=seed, token_secret=args.token_secret)
    # handler_cancellation: a client that gives up frees its capacity slot, like the real service.
    runner = web.AppRunner(
        build_app(emulator),
        access_log=None,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = FastSite(emulator, runner, sock)  # the hot routes on a lean front, aiohttp behind it
    await site.start()
    if worker is not None:
        # Siblings ask each other for their send stamps on a private socket (WorkerLink.ask_siblings).
        emulator.sends.limit = math.ceil(emulator.sends.limit / worker.count)
        await web.UnixSite(runner, worker_socket(worker.shared_dir, worker.index)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchers = []
    parent = worker.supervisor_pid if worker is not None else args.parent_pid
    if parent:
        watchers.append(asyncio.create_task(watch_parent(parent, stop)))
    if worker is not None:
        emulator.link = WorkerLink(worker)
        watchers.append(asyncio.create_task(sync_with_siblings(emulator, emulator.link, stop)))
        os.write(worker.ready_fd, b"1")
    if announce:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"Gemini emulator listening on http://{shown}:{port}", flush=True)
    await stop.wait()
    for task in watchers:
        task.cancel()
    with contextlib.suppress(Exception):
        await site.stop()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        factory = loop_factory(args.loop)
    except ImportError:
        print("emulator: --loop uvloop needs the uvloop package (make setup installs it)", file=sys.stderr)
        return 2
    try:
        load_profile(args.profile, args.config)  # fail fast, with a one-line message, before binding
    except ConfigError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    if args.listen_fd is not None:
        try:
            sock = socket.socket(fileno=args.listen_fd)
        except OSError as exc:
            print(f"emulator: --listen-fd {args.listen_fd} is not a socket: {exc.strerror}", file=sys.stderr)
            return 2
        sock.setblocking(False)
        with contextlib.suppress(KeyboardInterrupt):
            run_loop(serve(args, sock, announce=True), factory)
        return 0
    try:
        # With workers, this socket only reserves the port; each worker listens on its own.
        sock = bind_socket(args.host, args.port, reuse_port=args.workers > 1, listen=args.workers == 1)
    except OSError as exc:
        print(
            f"emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}; pick another --port",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1:

        def serve_worker(sock: socket.socket, worker: WorkerInfo) -> None:
            run_loop(serve(args, sock, announce=False, worker=worker), factory)

        return run_workers(args, sock, serve_worker, bind_socket)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve(args, sock, announce=True), factory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
