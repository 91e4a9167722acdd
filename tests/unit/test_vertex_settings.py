"""--backend vertex: the options, their checks and Vertex's prices (no network)."""

from __future__ import annotations

import argparse
from datetime import date

import pytest

from core.options import OptionError
from users.pricing import PriceTable
from users.settings import GeminiSettings
from users.vertex import VertexAccess


def options(**given: object) -> argparse.Namespace:
    base: dict[str, object] = dict(
        model="gemini-3.8-flash", transport="http", api_key="", max_output_tokens=0, temperature=0.0,
        timeout=10.0, retries=0, backend="vertex", project="", location="",
    )  # fmt: skip
    base.update(given)
    return argparse.Namespace(**base)


@pytest.fixture(autouse=True)
def _no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_vertex_takes_project_and_location_from_options_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = GeminiSettings.from_options(options(project="p", location="us-central1"), emulator=False)
    assert (settings.backend, settings.project, settings.location) == ("vertex", "p", "us-central1")
    assert settings.api_key == ""  # OAuth: no key is needed or kept
    assert not settings.vertex_express
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    settings = GeminiSettings.from_options(options(), emulator=False)
    assert (settings.project, settings.location) == ("env-project", "europe-west4")
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION")
    assert GeminiSettings.from_options(options(), emulator=False).location == "global"
    assert GeminiSettings.from_options(options(), emulator=False).public()["backend"] == "vertex"


def test_an_explicit_key_is_vertex_express_mode() -> None:
    settings = GeminiSettings.from_options(options(api_key="k" * 39), emulator=False)
    assert settings.vertex_express and settings.api_key == "k" * 39 and settings.project == ""
    with pytest.raises(OptionError, match="express mode, which takes no project"):
        GeminiSettings.from_options(options(api_key="k" * 39, project="p"), emulator=False)
    with pytest.raises(OptionError, match="express mode .* serves only global"):
        GeminiSettings.from_options(options(api_key="k" * 39, location="us-central1"), emulator=False)
    assert GeminiSettings.from_options(options(api_key="k" * 39), emulator=False).vertex_location == "global"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"transport": "legacy"},
            r"--transport legacy cannot reach Vertex AI.*use --transport genai or http",
        ),
        ({"backend": "gemini", "project": "p"}, r"--project is for Vertex AI: add --backend vertex"),
        ({"backend": "gemini", "location": "us-east1"}, r"--location is for Vertex AI"),
        ({"backend": "azure"}, r"--backend 'azure' is not known: choose one of gemini, vertex"),
        ({"project": "p/../x"}, r"--project 'p/../x' is not a Google Cloud project id"),
        ({"location": "US Central"}, r"--location 'US Central' is not a Vertex AI location"),
        (
            {"model": "gemini-3.1-pro-preview", "location": "us-central1"},
            r"serves gemini-3.1-pro-preview only on global: use --location global",
        ),
        ({"context_cache": "explicit"}, r"--context-cache explicit .* use --context-cache implicit"),
        ({"image_transport": "files"}, r"Files API, which Vertex AI does not have"),
    ],
)
def test_what_vertex_cannot_do_is_one_line_at_start_up(given: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        GeminiSettings.from_options(options(**given), emulator=False)


def test_vertex_prices_are_the_developer_api_s_on_global_and_dearer_in_a_region() -> None:
    day = date(2026, 11, 29)
    developer = PriceTable.load(day=day).price_for("gemini-3.8-flash")
    on_global = PriceTable.load(day=day, vertex_location="global").price_for("gemini-3.8-flash")
    regional = PriceTable.load(day=day, vertex_location="us-central1").price_for("gemini-3.8-flash")
    assert developer is not None and on_global == developer
    assert regional is not None
    assert regional.input == pytest.approx(developer.input * 1.1)
    assert regional.output == pytest.approx(developer.output * 1.1)
    # 2.5 has no regional premium recorded: its prices stay as they are.
    assert PriceTable.load(day=day, vertex_location="us-central1").price_for(
        "gemini-2.5-flash-lite"
    ) == PriceTable.load(day=day).price_for("gemini-2.5-flash-lite")


def test_vertex_paths() -> None:
    oauth = VertexAccess("p", "us-central1", tokens=object())  # type: ignore[arg-type]
    assert oauth.model_path("gemini-3.8-flash") == (
        "v1/projects/p/locations/us-central1/publishers/google/models/gemini-3.8-flash"
    )
    express = VertexAccess("", "global", tokens=None)
    assert express.model_path("m", "v1beta1") == "v1beta1/publishers/google/models/m"


def test_the_limiter_takes_no_quota_tier_on_vertex() -> None:
    from users.policies import policy_names
    from users.policies.options import PolicySettings

    given = options(client_policy="limiter", limit_rpm="0", limit_tpm="0", quota_tier="tier1")
    with pytest.raises(OptionError, match="Vertex has no per-project quota tiers"):
        PolicySettings.from_options(given, model="gemini-3.8-flash", known=policy_names())
    given = options(client_policy="limiter", limit_rpm="60", limit_tpm="100000", quota_tier="")
    assert (
        PolicySettings.from_options(given, model="gemini-3.8-flash", known=policy_names()).limiter.rpm == 60
    )
