"""Start and stop the emulator as a child process, from a plain or a gevent-patched Python.

    with EmulatorProcess(profile="small-capacity", time_scale=0.1) as emu:
        base_url = emu.url          # http://127.0.0.1:PORT
        ...
        print(emu.stats())

A dead child is noticed at once: watch(on_death) waits on it in a daemon thread (a greenlet under
gevent) and calls on_death with one line saying how it ended, unless stop() ended it.

No orphans: stop() on normal exit and at interpreter exit (atexit); if this process dies by
SIGKILL, the kernel sends the child SIGTERM (PR_SET_PDEATHSIG, Linux), and the emulator's own
parent-pid watchdog exits when it is re-parented (other platforms, or a race at start).
Note PR_SET_PDEATHSIG fires when the *thread* that started the child ends: start it from a thread
that lives as long as you need the emulator (the main thread, or any greenlet under gevent).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY_PREFIX = "Gemini emulator listening on "
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LIVE: weakref.WeakSet[EmulatorProcess] = weakref.WeakSet()


class EmulatorStartError(RuntimeError):
    """The emulator did not come up; the message carries the tail of its stderr."""


def _listening_socket(host: str) -> socket.socket:
    """A loopback (or given) listening socket on a free port, for the child to inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(4096)
    return sock


def die_with_parent() -> None:
    """preexec_fn: ask Linux to send us SIGTERM when the parent goes away."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class EmulatorProcess:
    def __init__(
        self,
        *,
        profile: str | None = None,
        config: str | None = None,
        time_scale: float = 1.0,
        seed: int | None = None,
        host: str = "127.0.0.1",
        workers: int = 1,
        token_lifetime: int | None = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.time_scale = time_scale
        self.seed = seed
        self.host = host
        self.workers = workers
        self.token_lifetime = token_lifetime  # seconds an access token lives (None: the config's)
        self.url: str = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None
        self._command: list[str] = []
        self._ready = False
        self._ready_lock = threading.Lock()  # cooperative under gevent's monkey-patching
        self._stderr_file: Any = None

    # ---- lifecycle -----------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "emulator", "--host", self.host, "--port", "0"]
        cmd += ["--parent-pid", str(os.getpid()), "--time-scale", repr(float(self.time_scale))]
        if self._listener is not None:
            cmd += ["--listen-fd", str(self._listener.fileno())]
        if self.profile:
            cmd += ["--profile", self.profile]
        if self.config:
            cmd += ["--config", str(self.config)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if self.workers != 1:
            cmd += ["--workers", str(self.workers)]
        if self.token_lifetime is not None:
            cmd += ["--token-lifetime", str(self.token_lifetime)]
        return cmd

    def start(self, timeout: float = 20.0) -> str:
        """Spawn the emulator, wait until it answers /healthz, and return its base URL."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> str:
        """Spawn the emulator without waiting for it, and return its base URL.

        With one serving process the port is bound and listening here, before the child starts, so
        the URL is final at once and early connections queue until the emulator serves them; call
        wait_ready() before counting on an answer.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        env = dict(os.environ)
        # The project root on the path, so `-m emulator` works from any working directory.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        if self.workers == 1:
            self._listener = _listening_socket(self.host)
            host, port = self._listener.getsockname()[:2]
            self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        # A file, not a pipe: nobody reads stderr while the emulator runs, and a full pipe would block it.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        preexec = die_with_parent if sys.platform.startswith("linux") else None
        self._command = self.command()
        self._proc = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            preexec_fn=preexec,
            pass_fds=(self._listener.fileno(),) if self._listener is not None else (),
            # Own session: a Ctrl-C in the terminal stops the load test, which then stops us in
            # order (and can still read the final stats), instead of killing both at once.
            start_new_session=True,
        )
        if self._listener is not None:
            # The child holds the port now. Our copy would keep accepting into the backlog after the
            # child died, so a dead emulator would look like a hanging one instead of a refusal.
            self._listener.close()
            self._listener = None
        _LIVE.add(self)
        return self.url

    def wait_ready(self, timeout: float = 20.0) -> str:
        """Wait for the launched emulator's ready line and a 200 from /healthz; its base URL.

        Raises EmulatorStartError (and stops the child) when it does not come up in time."""
        # Several waiters (a start-up greenlet and a web-UI start) may ask at once; one reads the pipe.
        with self._ready_lock:
            if self._ready:
                return self.url
            deadline = time.monotonic() + timeout
            try:
                self.url = self._wait_ready_line(deadline)
                self._wait_healthy(deadline)
            except EmulatorStartError:
                self.stop()
                raise
            self._ready = True
            return self.url

    def _wait_ready_line(self, deadline: float) -> str:
        if self._proc is None or self._proc.stdout is None:
            raise EmulatorStartError("the emulator was stopped before it was ready")
        fd = self._proc.stdout.fileno()
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorStartError(self._failure("did not print its ready line in time"))
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if not readable:
                if self._proc.poll() is not None:
                    raise EmulatorStartError(self._failure(f"exited with code {self._proc.returncode}"))
                continue
            data = os.read(fd, 4096)
            if not data:
                self._proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                raise EmulatorStartError(self._failure(f"exited with code {self._proc.returncode}"))
            buffer += data
        line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
        # Nothing more is printed to stdout; close our end so the pipe can never fill up.
        self._proc.stdout.close()
        if not line.startswith(READY_PREFIX):
            raise EmulatorStartError(self._failure(f"printed an unexpected line {line!r}"))
        return line[len(READY_PREFIX) :]

    def _wait_healthy(self, deadline: float) -> None:
        last_error = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2.0) as reply:
                    if reply.status == 200:
                        return
                    last_error = f"HTTP {reply.status}"
            except (OSError, urllib.error.URLError) as exc:
                last_error = str(exc)
            time.sleep(0.05)
        raise EmulatorStartError(self._failure(f"/healthz did not answer 200 ({last_error})"))

    def _failure(self, what: str) -> str:
        tail = self.stderr_tail()
        message = f"emulator ({' '.join((self._command or self.command())[1:])}) {what}"
        return f"{message}; stderr tail:\n{tail}" if tail else message

    def stderr_tail(self, lines: int = 20) -> str:
        if self._stderr_file is None:
            return ""
        try:
            self._stderr_file.seek(0)
            text = self._stderr_file.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stats(self) -> dict[str, Any]:
        """The emulator's GET /emulator/stats."""
        return self._get_json("/emulator/stats")

    def set_faults(self, faults: dict[str, float]) -> dict[str, Any]:
        """Change fault rates at runtime (POST /emulator/faults); returns the rates now in force."""
        return self._post_json("/emulator/faults", faults)

    def _get_json(self, path: str) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("the emulator is not started; call start() first")
        with urllib.request.urlopen(self.url + path, timeout=10.0) as reply:
            return json.loads(reply.read())

    def _post_json(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        if not self.url:
            raise RuntimeError("the emulator is not started; call start() first")
        request = urllib.request.Request(
            self.url + path, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10.0) as reply:
            return json.loads(reply.read())

    def watch(self, on_death: Callable[[str], None]) -> threading.Thread:
        """Call `on_death(how)` as soon as the launched child ends without stop() having asked it to
        ("killed by SIGKILL", "exited with code 1 (its last stderr line)"). It waits on the child in
        a daemon thread, which under gevent's monkey-patching is a greenlet: on_death runs there.
        Returns the thread, which ends with the child."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("the emulator is not launched; call launch() first")

        def wait_for_death() -> None:
            returncode = proc.wait()
            if self._proc is not proc:
                return  # stop() (or a new launch) ended it on purpose
            on_death(self.describe_exit(returncode))

        watcher = threading.Thread(target=wait_for_death, name="emulator-watch", daemon=True)
        watcher.start()
        return watcher

    def describe_exit(self, returncode: int) -> str:
        """How the child ended, in a few words."""
        if returncode < 0:
            try:
                return f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                return f"killed by signal {-returncode}"
        tail = self.stderr_tail(lines=1)  # a crash's last line names the exception
        how = f"exited with code {returncode}"
        return f"{how} ({tail})" if tail else how

    @property
    def ready(self) -> bool:
        """wait_ready() saw it answer, and stop() has not been called since."""
        return self._ready

    def exit_description(self) -> str | None:
        """How the launched child ended (describe_exit), or None while it runs or when never launched."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        return self.describe_exit(proc.returncode)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Safe to call any number of times."""
        proc, self._proc = self._proc, None
        self._ready = False
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=timeout)
            if proc.stdout is not None and not proc.stdout.closed:
                proc.stdout.close()
        _LIVE.discard(self)

    def close_logs(self) -> None:
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close_logs()


@atexit.register
def _stop_all() -> None:
    for emulator in list(_LIVE):
        with contextlib.suppress(Exception):
            emulator.stop(timeout=2.0)
