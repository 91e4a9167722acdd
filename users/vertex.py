"""Vertex AI as the backend (--backend vertex): where calls go and how they sign in.

Vertex serves the same generateContent JSON as the Gemini Developer API at other paths:
`/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`
with an OAuth 2 bearer token, or in express mode `/{version}/publishers/google/models/{model}:...`
with an API key. `VertexAccess` is this process's way in, built once per process before the load
(`prepare_vertex`) and shared by its users: the transports read the path and the current token
from it. The token source renews the token in the background (users/auth.py) and each renewal is
a row of the auth log (core/results.AUTH_LOG).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from core import results as layout
from metrics.event_log import EventLog
from metrics.redaction import protect_outputs
from users.auth import (
    AuthError,
    AuthEvent,
    TokenSource,
    load_credentials,
    service_account_credentials,
    throwaway_service_account,
)
from users.policies.runtime import role_of
from users.settings import check_project_id
from users.state import settings_of, users_state

logger = logging.getLogger(__name__)

EMULATOR_PROJECT = "emulator-project"  # the bundled emulator's project when none is given
API_VERSION = "v1"  # the raw HTTP transport's (GA); google-genai sends v1beta1 by its own default


@dataclass(frozen=True, slots=True)
class VertexAccess:
    project: str  # "" in express mode
    location: str
    tokens: TokenSource | None  # None in express mode: the API key signs every call
    log: AuthLog | None = None  # the token source's renewals

    def model_path(self, model: str, version: str = API_VERSION) -> str:
        """The path of a model's methods, without the leading slash or the `:method`."""
        if self.tokens is None:
            return f"{version}/publishers/google/models/{model}"
        return f"{version}/projects/{self.project}/locations/{self.location}/publishers/google/models/{model}"

    def wait_valid(self) -> None:
        if self.tokens is not None:
            self.tokens.wait_valid()

    def refused(self, http_status: int | None) -> None:
        """A call was answered `http_status`: a 401 means the token is no good any more."""
        if http_status == 401 and self.tokens is not None:
            self.tokens.invalidate()


class AuthLog(EventLog):
    """auth-<role>-<hostname>-<pid>.csv: this process's token renewals and waits."""

    def __init__(self, environment: Any, role: str) -> None:
        super().__init__(environment, layout.AUTH_LOG, role)

    def event(self, event: AuthEvent) -> None:
        self.write(
            {
                "timestamp": round(time.time(), 6),
                "node": self.node,
                "event": event.event,
                "duration_ms": round(event.duration_ms, 3),
                "detail": event.detail,
            }
        )


def prepare_vertex(environment: Any, *, bundled_emulator: bool) -> None:
    """This process's VertexAccess for its settings (built once, rebuilt only when what it was
    built from changes: a web-UI test with another project); none off Vertex. Raises AuthError."""
    state = users_state(environment)
    settings = settings_of(environment)
    key = (
        settings.backend,
        settings.project,
        settings.location,
        settings.vertex_express,
        environment.host,
        os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", ""),
    )
    if state.vertex_key != key:
        close_vertex(environment)
        if settings.backend != "vertex":
            return
        state.vertex = build_access(
            environment, settings, base_url=environment.host or "", bundled_emulator=bundled_emulator,
            role=role_of(environment),
        )  # fmt: skip
        state.vertex_key = key
        if state.vertex.tokens is not None:
            logger.info(
                "Vertex AI: signed in for project %s, location %s (token renewed in the background)",
                state.vertex.project,
                state.vertex.location,
            )
    elif state.vertex is not None and state.vertex.tokens is not None:
        state.vertex.tokens.announce()  # a next test (or the run's start): its log names the token
    access = state.vertex
    if access is not None and access.project and not settings.project:
        # The project the credentials named (or the emulator's): run.json says where calls went.
        state.settings = dataclasses.replace(settings, project=access.project)


def close_vertex(environment: Any) -> None:
    """Stop renewing this process's token (at quit, or before another way in is built)."""
    state = users_state(environment)
    if state.vertex is not None and state.vertex.tokens is not None:
        state.vertex.tokens.stop()
    if state.vertex is not None and state.vertex.log is not None:
        state.vertex.log.close()
    state.vertex = state.vertex_key = None


def build_access(
    environment: Any, settings: Any, *, base_url: str, bundled_emulator: bool, role: str
) -> VertexAccess:
    """This process's way into Vertex for `settings` (backend vertex), its first token fetched.
    Raises users.auth.AuthError (an OptionError's kind of problem: one line, what to set)."""
    if settings.vertex_express:
        return VertexAccess("", settings.location, None)
    if bundled_emulator:
        # A key made now whose token endpoint is the emulator: the same google-auth sign-in a real
        # service-account key takes, with no file and nothing to configure.
        project = settings.project or EMULATOR_PROJECT
        info = throwaway_service_account(f"{base_url.rstrip('/')}/token", project)
        credentials = service_account_credentials(info)
        protect_outputs(environment, (info["private_key"],))
    else:
        credentials, found_project = load_credentials()
        project = settings.project or found_project
    check_project_id(project, "the credentials' project")
    check_project_id(getattr(credentials, "quota_project_id", None) or "", "the credentials' quota project")
    if not project:
        raise AuthError(
            "--backend vertex needs a project: pass --project or set GOOGLE_CLOUD_PROJECT "
            "(the credentials name none)"
        )
    log = AuthLog(environment, role)
    tokens = TokenSource(
        credentials,
        on_token=lambda token: protect_outputs(environment, (token,)),
        on_event=log.event,
    )
    try:
        tokens.fetch()
    except AuthError:
        log.close()
        raise
    tokens.start_refresher()
    return VertexAccess(project, settings.location, tokens, log)
