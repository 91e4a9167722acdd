"""Is the --host there at all? One TCP connect before any load is sent.

Without it, a wrong host or port (or a server that is down) is found only by the load itself: a
whole run of "connection refused" and exit 1. One connect at start-up, with a short timeout, turns
it into one line naming the host and the fix, and exit 2. Only the TCP handshake is made: no
request, no key on the wire.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlsplit

from core.options import OptionError

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
