"""A throwaway service account for tests that authenticate the way a Vertex AI caller does.

    account = write_service_account(tmp_path / "sa.json", token_uri=emu.url + "/token")
    credentials = service_account.Credentials.from_service_account_file(
        account.path, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )

The JSON is a standard service-account key file (the fields Google's console writes); its RSA
key is generated per call and exists nowhere else, so google-auth signs real JWTs with it, and the
bundled emulator's POST /token (emulator.oauth) takes them. Import it by its full name from any
test folder: `from tests.service_account import write_service_account`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from users.auth import throwaway_service_account


@dataclass(frozen=True)
class ServiceAccount:
    path: Path  # the JSON key file
    private_key_pem: str
    client_email: str
    private_key_id: str


def write_service_account(path: Path, token_uri: str, project_id: str = "test-project") -> ServiceAccount:
    """Write a service-account key file for `project_id` whose token_uri is `token_uri` (the key
    the suite makes for a run against its bundled emulator, saved as a console-made file is)."""
    info = throwaway_service_account(token_uri, project_id)
    path.write_text(json.dumps(info, indent=2))
    return ServiceAccount(path, info["private_key"], info["client_email"], info["private_key_id"])
