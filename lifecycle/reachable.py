"""Is the --host there at all, and does it serve the model? Checked before any load is sent.

Without it, a wrong host or port (or a server that is down) is found only by the load itself: a
whole run of "connection refused" and exit 1. One connect at start-up, with a short timeout, turns
it into one line naming the host and the fix, and exit 2. Only the TCP handshake is made: no
request, no key on the wire.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import urlsplit

from core.options import OptionError
from core.secrets import redact

CONNECT_TIMEOUT_S = 5.0  # a TCP handshake takes well under a second even across oceans


def _proxy_for(scheme: str, hostname: str) -> tuple[str, int] | None:
    """(host, port) of the proxy the transports' HTTP clients would use for this host, if any:
    httpx and requests both honour HTTP(S)_PROXY / ALL_PROXY and NO_PROXY from the environment, and
    then the proxy, not the host, is what must accept the connection."""
    proxy = urllib.request.getproxies().get(scheme) or urllib.request.getproxies().get("all")
    if not proxy or urllib.request.proxy_bypass(hostname):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None  # a proxy URL the HTTP clients will complain about themselves
    return (parts.hostname, port) if parts.hostname else None


def check_reachable(host: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise OptionError (one line: the host, why, the fix) unless a TCP connection to the host's
    address and port (or to its proxy) opens within `timeout` seconds."""
    parts = urlsplit(host)
    hostname = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OptionError(
            f"--host {host}: the port is not a number from 1 to 65535; fix the URL, or drop --host to "
            "use the bundled emulator"
        ) from None
    target = (hostname, port)
    via = ""
    proxy = _proxy_for(parts.scheme, hostname)
    if proxy is not None:
        target = proxy
        via = f" through the proxy {proxy[0]}:{proxy[1]} (from the *_PROXY environment)"
    try:
        with socket.create_connection(target, timeout=timeout):
            return
    except socket.gaierror:
        reason = f"the name {target[0]} does not resolve"
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        reason = "connection refused: nothing listens on that port"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise OptionError(
        f"--host {host}: cannot connect to {hostname}:{port}{via} ({reason}); check the address, the "
        "port and that the server is up, or drop --host to use the bundled emulator"
    )


MODELS_GET_TIMEOUT_S = 15.0


def check_model_served(
    host: str, model: str, api_key: str, timeout: float = MODELS_GET_TIMEOUT_S
) -> str | None:
    """One models.get before any load: does `host` serve `model` to this key?

    Raises OptionError with the API's own message when it answers 404 (no such model, or a retired
    one: otherwise a whole run of 404s) or refuses the key (400/401/403). A busy or failing server
    (429, 5xx) or a reply that is not the API's is not a reason to refuse a load test of it: that
    returns a warning line instead. The key travels in the x-goog-api-key header, never in the URL."""
    name = model.removeprefix("models/")
    url = f"{host.rstrip('/')}/v1beta/models/{urllib.parse.quote(name, safe='')}"
    request = urllib.request.Request(url, headers={"x-goog-api-key": api_key, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read(1 << 20)
            return None
    except urllib.error.HTTPError as exc:
        status, message = exc.code, _api_message(exc, api_key)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return f"models.get {name} on {host} could not be checked ({reason}): starting anyway"
    if status == 404:
        raise OptionError(
            f"--model {name}: {host} answered models.get with 404 ({message}); check the model id "
            "(the catalogue's current models: python -m core.catalogue), or give another --model"
        )
    if status in (400, 401, 403):
        raise OptionError(
            f"--model {name}: {host} refused the API key on models.get (HTTP {status}: {message}); "
            "check GEMINI_API_KEY or --api-key"
        )
    return f"models.get {name} on {host} answered HTTP {status} ({message}): starting anyway"


def _api_message(error: urllib.error.HTTPError, api_key: str) -> str:
    """The API's error.message (one line, at most 300 characters, the key masked), else the status."""
    try:
        body = json.loads(error.read(1 << 16) or b"{}")
        message = str(body["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        message = str(error.reason or "no message")
    # Redacted before it is cut: a cut could leave a piece of the key that no longer matches.
    return " ".join(redact(message, (api_key,)).split())[:300]
