"""The user's own service for an app run: started before the load (--app-command), stopped after,
and the model calls it made fetched from the model host when the run ends (model_calls.csv).

    --app-command "python -m examples.moderation_service --port {port} --pool 4"
    --app-url "http://127.0.0.1:{port}/moderate"

The process that starts the run (local or master) runs the command, without a shell, in its own
session, with:
- {port}: a free loopback port, put into --app-url's {port} as well;
- GEMINI_BASE_URL: the model host the run measures (the bundled emulator, or --host), and
  GEMINI_API_KEY: the run's key (the emulator's, or the one given for --host);
- its output in app-service.log in the results folder, through the run's redactor.
The run waits until the app's URL accepts a connection; a service that exits first, or is not
listening within APP_START_TIMEOUT_S, stops start-up with one line and the end of its output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from core.options import OptionError
from core.results import MODEL_CALLS, Attribution
from core.secrets import Redactor
from emulator.launcher import die_with_parent
from metrics.redaction import redactor_of
from metrics.results import AppendedCsv, RunFolder, public_host
from users.app import APP_URL
from users.errors import redact
from users.mix import parse_mix
from users.state import users_state
from users.transports.http11 import endpoint_of

logger = logging.getLogger("gemini_locust")

APP_START_TIMEOUT_S = 60.0
APP_STOP_TIMEOUT_S = 5.0
APP_LOG = "app-service.log"
SENDS_PATH = "/emulator/sends"
SENDS_TIMEOUT_S = 30.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
SLACK_S = 5.0  # model calls this long before the run's start still belong to it (clock rounding)


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--app-command",
        default="",
        help="app runs: a command that starts your service for the run and is stopped after it; {port} "
        "is a free port, also put into --app-url; it gets GEMINI_BASE_URL (the model host) and "
        "GEMINI_API_KEY (the run's key)",
        include_in_web_ui=False,
    )


def check_app_options(options: Any) -> None:
    """--app-url and --app-command make sense only when --mix runs the app user; OptionError."""
    url = APP_URL.raw(options)
    command = str(getattr(options, "app_command", "") or "").strip()
    if (url or command) and not ran_app(options):
        flag = "--app-url" if url else "--app-command"
        raise OptionError(f"{flag} is given but --mix does not run the app user: add app=1 to --mix")
    if command and not url:
        raise OptionError("--app-command starts your service, but --app-url does not say where to call it")
    if "{port}" in url and "{port}" not in command:
        raise OptionError("--app-url has {port}, filled only by --app-command's {port}: put it in both")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppService:
    """The child process running the user's service. Its output goes to a private file outside the
    results folder while it runs (no work on the load generator's event loop, no pipe to fill),
    and into app-service.log through the run's redactor when it stops: the service holds the
    run's key, and no file of the results folder may show it."""

    def __init__(self, command: str, url: str, model_host: str, *, api_key: str, redactor: Redactor) -> None:
        self.port = _free_port() if "{port}" in command else None
        fill = str(self.port) if self.port is not None else "{port}"
        try:
            self.argv = shlex.split(command.replace("{port}", fill))
        except ValueError as exc:
            raise OptionError(f"--app-command {command!r}: {exc} (quote it as a shell would)") from None
        if not self.argv:
            raise OptionError("--app-command is empty: give the command that starts your service")
        self.url = url.replace("{port}", fill)
        # Our own name for the base URL, and google-genai's: a service on the SDK's defaults must
        # reach the emulator too, never the real API with a key it found in the environment.
        self.env = dict(os.environ, GEMINI_BASE_URL=model_host, GOOGLE_GEMINI_BASE_URL=model_host)
        self.env["PYTHONUNBUFFERED"] = "1"
        if api_key:  # the run's: the emulator's, or the one given for --host
            self.env["GEMINI_API_KEY"] = self.env["GOOGLE_API_KEY"] = api_key
        self._redactor = redactor
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: Path | None = None
        self.log_path: Path | None = None

    def start(self, folder: Path) -> None:
        """Start it and wait until its URL accepts a connection; stopped again if it does not."""
        self.log_path = folder / APP_LOG
        handle, name = tempfile.mkstemp(prefix="gemini-app-service-", suffix=".log")  # mode 0600
        self._output = Path(name)
        try:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True, preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )  # fmt: skip
        except OSError as exc:
            self.stop(quiet=True)
            raise OptionError(f"--app-command: cannot run {self.argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            os.close(handle)
        logger.info("started your service (pid %s): %s", self._proc.pid, shlex.join(self.argv))
        try:
            self._wait_listening()
        except BaseException:  # not listening, or Ctrl-C meanwhile: nothing of it left behind
            self.stop(quiet=True)  # the error says what happened
            raise

    def _wait_listening(self) -> None:
        url = urlsplit(self.url)
        address, _ = endpoint_of(url)
        deadline = time.monotonic() + APP_START_TIMEOUT_S
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise OptionError(
                    f"--app-command exited with code {self._proc.returncode} before it listened on "
                    f"{address[0]}:{address[1]}: {self.output_tail()}"
                )
            try:
                with socket.create_connection(address, timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise OptionError(
                        f"--app-command: nothing listens on {address[0]}:{address[1]} after "
                        f"{APP_START_TIMEOUT_S:.0f} s (check --app-url's port): {self.output_tail()}"
                    ) from None
            # why: a readiness poll of a child we do not control; it has no other signal to give
            gevent.sleep(0.05)

    def output_tail(self, lines: int = 3) -> str:
        output = self._output
        text = self._redacted_output_of(output) if output is not None and output.exists() else ""
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())
        return tail or "(no output)"

    def stop(self, *, quiet: bool = False) -> None:
        """SIGTERM to its session (its children too), SIGKILL after APP_STOP_TIMEOUT_S; then its
        output, redacted, into app-service.log. Safe to call again."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is not None and not quiet:
                logger.warning("your service (pid %s) had exited with code %s", proc.pid, proc.returncode)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)  # also when it has exited: its children may not have
            try:
                proc.wait(timeout=APP_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("your service (pid %s) did not stop on SIGTERM: killed", proc.pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=APP_STOP_TIMEOUT_S)
        output, self._output = self._output, None
        if output is None:
            return
        try:
            if self.log_path is not None:
                text = self._redacted_output_of(output)
                with self.log_path.open("a", encoding="utf-8") as log:
                    log.write(text + ("\n" if text else ""))
        except OSError as exc:
            logger.warning("could not write %s: %s", self.log_path, exc.strerror or exc)
        finally:
            output.unlink(missing_ok=True)

    def _redacted_output_of(self, path: Path) -> str:
        text = path.read_bytes().decode("utf-8", errors="replace")
        return "\n".join(self._redactor(line) for line in text.splitlines())


def start_app_service(environment: Environment, folder: Path) -> AppService | None:
    """--app-command's service, started and listening; --app-url's {port} filled. OptionError.
    Call once the run's settings (and so its key) are known."""
    options = environment.parsed_options
    check_app_options(options)
    command = str(getattr(options, "app_command", "") or "").strip()
    if not command:
        _warn_when_not_listening(APP_URL.raw(options))
        return None
    settings = users_state(environment).settings
    api_key = settings.api_key if settings is not None else ""
    service = AppService(
        command,
        APP_URL.raw(options),
        environment.host or "",
        api_key=api_key,
        redactor=redactor_of(environment),
    )
    host = urlsplit(service.url).hostname or ""
    bind = str(getattr(options, "master_bind_host", "") or "")
    if isinstance(environment.runner, MasterRunner) and bind not in LOOPBACK and host in LOOPBACK:
        logger.warning(
            "--app-command: your service listens on %s of this host; workers on other hosts cannot reach it "
            "(give --app-url a name they can)",
            host,
        )
    folder.mkdir(parents=True, exist_ok=True)
    service.start(folder)
    # Workers get the filled URL with the spawn message, like every option.
    options.app_url = service.url
    return service


def fill_port(environment: Environment, service: AppService | None) -> None:
    """A test starts: --app-url's {port} is the running service's. The web UI's form shows (and
    sends back) the URL as the command line gave it, {port} and all."""
    options = environment.parsed_options
    url = APP_URL.raw(options)
    if service is not None and service.port is not None and "{port}" in url:
        options.app_url = url.replace("{port}", str(service.port))


def _warn_when_not_listening(url: str) -> None:
    """A service the user runs themselves may come up later, and its refusals are results: so no
    refusal here, one warning line instead of a run of surprises."""
    if not url:
        return
    parts = urlsplit(url)
    try:
        with socket.create_connection(endpoint_of(parts)[0], timeout=2.0):
            return
    except (OSError, ValueError) as exc:
        logger.warning(
            "--app-url: nothing answers at %s:%s now (%s): its calls will fail as connection errors "
            "until your service listens",
            parts.hostname,
            parts.port,
            exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
        )


def fetch_model_calls(
    model_host: str, since: float, until: float
) -> tuple[list[dict[str, Any]], Attribution]:
    """The model host's per-request-id records of the calls that began in [since, until] (with
    SLACK_S either side), as MODEL_CALLS rows, and where they came from. A host that is not an
    emulator (no send log), does not answer or answers something else gives no rows and says why:
    never an exception, which would cost the run its report."""
    try:
        source = public_host(model_host) or ""
    except ValueError:  # a port that is not a number: urlsplit refuses it
        source = urlsplit(model_host).hostname or "the model host"
    try:
        with urllib.request.urlopen(model_host.rstrip("/") + SENDS_PATH, timeout=SENDS_TIMEOUT_S) as reply:
            document = json.loads(reply.read())
        rows, dropped = _rows_of(document, since, until)
    except urllib.error.HTTPError as exc:
        why = "it is not the suite's emulator" if exc.code == 404 else f"it answered HTTP {exc.code}"
        return [], Attribution(source=source, records=0, error=f"{SENDS_PATH} on the model host: {why}")
    except (OSError, ValueError, HTTPException) as exc:
        password = urlsplit(model_host).password  # an InvalidURL's message can quote it
        why = redact(f"{type(exc).__name__}: {exc}", (password,) if password else ())
        return [], Attribution(source=source, records=0, error=f"{SENDS_PATH} could not be read: {why}")
    return rows, Attribution(source=source, records=len(rows), dropped=dropped)


def _rows_of(document: Any, since: float, until: float) -> tuple[list[dict[str, Any]], int]:
    """MODEL_CALLS rows from a send log (emulator/sends.py); ValueError for one of another shape."""
    sends = document.get("sends") if isinstance(document, dict) else None
    dropped = document.get("dropped", 0) if isinstance(document, dict) else None
    if not isinstance(sends, dict) or not isinstance(dropped, int):
        raise ValueError("not a send log: no sends object and dropped count")
    rows = []
    for request_id, record in sends.items():
        if not isinstance(record, dict):
            raise ValueError(f"the record of {str(request_id)[:40]!r} is not an object")
        first = record.get("first_received")
        if not _number(first) or not since - SLACK_S <= first <= until + SLACK_S:
            continue  # another run's, or still under way
        figures = {name: record.get(name) for name in _FIGURES}
        if not all(value is None or _number(value) for value in figures.values()):
            raise ValueError(f"the record of {str(request_id)[:40]!r} holds a figure that is not a number")
        status = record.get("status")
        row = {"request_id": str(request_id), "model": str(record.get("model") or ""), **figures}
        rows.append(row | {"first_received": first, "last_sent": record.get("last_end"), "status": status})
    return rows, dropped


_FIGURES = ("calls", "last_end", "queue_ms", "model_ms", "prompt_tokens", "output_tokens", "thoughts_tokens")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_model_calls(environment: Environment, folder: RunFolder) -> None:
    """For a test whose mix ran the app user: model_calls.csv in its folder, from the model host,
    and where it came from in its run.json (`attribution`). Yields while it asks the host. Nothing
    here stops the finish: a failure is the attribution's error, and a warning."""
    if not ran_app(folder.options if folder.options is not None else environment.parsed_options):
        return
    since = folder.started_at or time.time()
    rows, attribution = fetch_model_calls(environment.host or "", since, folder.ended_at or time.time())
    if attribution.error:
        logger.warning("no split of the app's time into its own and the model's: %s", attribution.error)
    csv = AppendedCsv(MODEL_CALLS, MODEL_CALLS.name, redactor=redactor_of(environment))
    try:
        csv.open(folder.folder)
        csv.write(rows)
    except OSError as exc:
        attribution.error = f"{MODEL_CALLS.name} could not be written: {exc.strerror or exc}"
        logger.warning("%s", attribution.error)
    finally:
        csv.close()
    folder.extra["attribution"] = attribution.model_dump()


def ran_app(options: Any) -> bool:
    """Whether --mix ran the app user: options as parsed, or a test's frozen copy (a dict)."""
    mix = options.get("mix", "") if isinstance(options, dict) else getattr(options, "mix", "")
    return parse_mix(str(mix or "")).get("app", 0) > 0
