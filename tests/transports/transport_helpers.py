"""Shared helpers of the transport tests (imported by name: tests/transports is on sys.path)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from core.catalogue import default_model
from users.call import CallSpec, InlineImage

# A key of the real shape, so both redaction paths (known secret and key pattern) are exercised.
API_KEY = "AIzaSyTransportTest-0123456789abcdefghi"
TRANSPORT_NAMES = ("genai", "legacy", "http")


def make_transport(name: str, base_url: str, timeout_s: float = 10.0) -> Any:
    """Our own constructor table: the tests must not depend on how the lead wires make_transport."""
    if name == "genai":
        from users.transports.genai_sdk import GenaiTransport

        return GenaiTransport(base_url=base_url, api_key=API_KEY, timeout_s=timeout_s)
    if name == "legacy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from users.transports.legacy_sdk import LegacyTransport

        return LegacyTransport(base_url=base_url, api_key=API_KEY, timeout_s=timeout_s)
    if name == "http":
        from users.transports.raw_http import RawHttpTransport

        return RawHttpTransport(base_url=base_url, api_key=API_KEY, timeout_s=timeout_s)
    raise ValueError(name)


def rich_spec(**changes: Any) -> CallSpec:
    """A spec with a field of every kind a transport encodes (image, instruction, schema, safety)."""
    fields: dict[str, Any] = {
        "scenario": "s",
        "model": "gemini-3.5-flash-lite",
        "parts": ("look", InlineImage("image/png", b"\x89PNG-bytes")),
        "system_instruction": "be brief",
        "max_output_tokens": 10,
        "temperature": 0.5,
        "response_mime_type": "application/json",
        "response_schema": {"type": "object", "properties": {"v": {"type": ["string", "null"]}}},
        "safety_settings": (("HARM_CATEGORY_HATE_SPEECH", "BLOCK_NONE"),),
        **changes,
    }
    return CallSpec(**fields)


def spec(text: str = "Say something about queues.", *, stream: bool = False, **kwargs: Any) -> CallSpec:
    kwargs.setdefault("model", default_model())
    # Thinking and answer share the cap: room for the default thinking, as the suite's own cap has.
    kwargs.setdefault("max_output_tokens", 200 + 4096)
    return CallSpec(scenario="test", parts=(text,), stream=stream, **kwargs)


def self_signed_cert(tmp_path: Any) -> tuple[str, str]:
    """A throwaway certificate for localhost and its key (PEM paths), for loopback TLS servers."""
    crypto = pytest.importorskip("cryptography")  # only to make a test certificate
    del crypto
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)
