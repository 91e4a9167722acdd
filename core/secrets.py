"""Secrets: the one matcher that finds an API key in a text, in any form a message can hold it.

A key reaches a message raw or as some library printed it: repr'd or JSON-escaped (a trailing CR
becomes the two characters backslash and r, four when a repr is repr'd again), percent-encoded in
a URL's query (`?key=...`), bytes-repr'd, doubled quotes in a CSV cell, HTML-escaped, base64'd,
stripped of the whitespace around it, or cut short by a message limit. A `Redactor` knows a run's
secrets and replaces every piece of at least MIN_FRAGMENT characters of any of those forms with
*** (a whole key, the prefix a message limit kept, the rest of it after a line break), and with it
anything shaped like a Google API key or a `key=` / `x-goog-api-key:` value, whether the key is
known or not.

`key_problem` is the start-up check: a key with whitespace, control or non-ASCII characters is
refused with one line that names the character and never quotes the key. `install_log_redaction`
makes every log record of the process pass through a Redactor as it is made.

Imports nothing of the suite: every room's writers (CSV, log, report) use this one matcher.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
# A cut-off piece of a key this long is still hidden; a shorter one (a key's first few characters,
# "AIzaSy" for every Google key) is too common to tell apart from ordinary text.
MIN_FRAGMENT = 8
# The shape of a whole Google API key (hidden by _KEY_SHAPES below, cut short too).
GOOGLE_API_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{35}")
# Key-shaped text, hidden whether or not the run knows the key: a Google key (whole, or cut short
# to its first MIN_FRAGMENT or more characters after AIza), a URL query's key=..., a header's value.
_KEY_SHAPES = (
    re.compile(rf"AIza[0-9A-Za-z_\-]{{{MIN_FRAGMENT},}}"),
    re.compile(r"(?i)(key=)[^&\s'\"]+"),
    re.compile(r"(?i)(x-goog-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
    # OAuth 2 (Vertex AI): a bearer token in a header, a Google access token anywhere, a private key.
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{20,}=*"),  # 20+: "bearer authentication" stays
    re.compile(r"ya29\.[0-9A-Za-z_\-.]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
)
# A Redactor remembers the answer for short texts (a scenario, a model, a kind come by on every
# row of a CSV): up to this many, of up to this length.
_SEEN_MAX_ENTRIES = 4096
_SEEN_MAX_CHARS = 256


# ---- the forms a key takes in a message ------------------------------------------------------------


def _percent_lower(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(text, safe=""))


def _markup_escape(text: str) -> str:
    """Jinja's (markupsafe's) escaping, which the report uses: &#34; and &#39; for the quotes."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


# Each turns a text into the form a library prints it in. Applied twice: a repr of a JSON
# message, an escaped key inside a repr'd exception, a CSV cell of a repr.
_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda s: repr(s)[1:-1],  # Python repr
    lambda s: repr(s.encode("utf-8"))[2:-1],  # a bytes repr, as an HTTP library shows a header
    lambda s: s.encode("unicode_escape").decode("ascii"),  # repr without quote escapes
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: quote(s, safe=""),
    lambda s: quote(s),  # the path form: "/" kept
    quote_plus,
    _percent_lower,
    lambda s: s.replace('"', '""'),  # a CSV cell
    lambda s: html.escape(s),
    _markup_escape,
)


def _base64_cores(text: str) -> set[str]:
    """The part of base64(…text…) that is the same wherever the text sits in what was encoded:
    one per alignment (the text at offset 0, 1 or 2 of a 3-byte group), standard and URL-safe."""
    raw = text.encode("utf-8")
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = (8 * offset + 5) // 6  # characters that also hold bits of what came before
        end = (8 * (offset + len(raw))) // 6  # ... and of what comes after
        core = encoded[start:end]
        cores.update((core, core.replace("+", "-").replace("/", "_")))
    return {core for core in cores if core}


@functools.lru_cache(maxsize=64)
def secret_forms(secret: str) -> frozenset[str]:
    """Every form of a secret a message may hold (the secret itself included)."""
    bases = {secret, secret.strip()} - {""}
    forms = set(bases)
    for _ in range(2):
        forms |= {escape(form) for form in forms for escape in _ESCAPES}
    for base in bases:
        forms |= _base64_cores(base)
    return frozenset(form for form in forms if form)


# ---- the matcher -----------------------------------------------------------------------------------


class Redactor:
    """Hides a run's secrets, in every form of `secret_forms`, and key-shaped text, in a string.

    Forms of MIN_FRAGMENT characters or more are hidden wherever a piece of at least that length of
    them appears (a message cut short keeps a prefix of the key; a repr of a cut message, a piece);
    shorter ones (a short test key) only whole. Secrets can be added later (the web UI's form may
    bring a new key); a Redactor with none hides key shapes only.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._pieces: dict[str, list[tuple[str, int]]] = {}  # MIN_FRAGMENT chars -> (form, where)
        self._whole: list[str] = []  # forms too short for pieces, longest first
        self._seen: dict[str, str] = {}  # recent short texts -> their redacted form
        self.add(*secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            if not secret or secret in self._secrets:
                continue
            self._secrets.append(secret)
            for form in secret_forms(secret):
                if len(form) < MIN_FRAGMENT:
                    self._whole.append(form)
                    continue
                for start in range(len(form) - MIN_FRAGMENT + 1):
                    self._pieces.setdefault(form[start : start + MIN_FRAGMENT], []).append((form, start))
        self._whole.sort(key=len, reverse=True)
        self._seen.clear()

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans = []
        pieces = self._pieces
        index, last = 0, len(text) - MIN_FRAGMENT
        while pieces and index <= last:
            found = pieces.get(text[index : index + MIN_FRAGMENT])
            if found is None:
                index += 1
                continue
            end = index + MIN_FRAGMENT
            for form, start in found:  # as far as the text goes on like this form
                length = MIN_FRAGMENT
                while (
                    index + length < len(text)
                    and start + length < len(form)
                    and text[index + length] == form[start + length]
                ):
                    length += 1
                end = max(end, index + length)
            spans.append((index, end))
            # On from the last piece that reaches past this span: one inside it would only find
            # what was found (and a key's 40 characters in 20 forms would cost 40 x 20 scans).
            index = max(index + 1, end - MIN_FRAGMENT + 1)
        for form in self._whole:
            start = text.find(form)
            while start >= 0:
                spans.append((start, start + len(form)))
                start = text.find(form, start + len(form))
        return spans

    def redact(self, text: str) -> str:
        clean = self._seen.get(text)
        if clean is None:
            clean = self._redact(text)
            if len(text) <= _SEEN_MAX_CHARS:
                if len(self._seen) >= _SEEN_MAX_ENTRIES:
                    self._seen.clear()
                self._seen[text] = clean
        return clean

    __call__ = redact

    def _redact(self, text: str) -> str:
        spans = self._spans(text)
        if spans:
            merged: list[list[int]] = []
            for start, end in sorted(spans):
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            pieces, kept = [], 0
            for start, end in merged:
                pieces.extend((text[kept:start], MASK))
                kept = end
            pieces.append(text[kept:])
            text = "".join(pieces)
        return redact_key_shapes(text)


def redact_key_shapes(text: str) -> str:
    """Key-shaped text hidden, for a writer that does not know the key (the report)."""
    lower = text.lower()
    if "AIza" not in text and "key" not in lower and "ya29" not in text and "bearer" not in lower:
        return text  # the quick answer for nearly every text
    for pattern in _KEY_SHAPES:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


@functools.lru_cache(maxsize=16)
def _redactor_for(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every form of the secrets, and every key-shaped string, replaced by ***."""
    return _redactor_for(tuple(secrets)).redact(text)


# ---- the start-up check ----------------------------------------------------------------------------

_NAMED = {
    "\r": "a carriage return (\\r)",
    "\n": "a line feed (\\n)",
    "\t": "a tab (\\t)",
    " ": "a space",
}


def key_problem(key: str) -> str | None:
    """What is wrong with a key's characters, in words that never quote the key; None if nothing.

    An API key is printable ASCII without spaces: anything else (a Windows line ending left by
    `$(cat key.txt)`, a pasted space) breaks an HTTP header, where each client fails differently
    and may print the key in its error.
    """
    for index, char in enumerate(key):
        if "!" <= char <= "~":
            continue
        if char in _NAMED:
            what = _NAMED[char]
        elif char.isspace():
            what = f"a whitespace character (U+{ord(char):04X})"
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            what = f"a control character (U+{ord(char):04X})"
        else:
            what = f"a non-ASCII character (U+{ord(char):04X})"
        if index == len(key) - 1 and len(key) > 1:
            return f"ends with {what}"
        if index == 0:
            return f"starts with {what}"
        return f"has {what} at character {index + 1} of {len(key)}"
    return None


# ---- log records ---------------------------------------------------------------------------------


def _redact_record(record: logging.LogRecord, redactor: Redactor) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: keep what can be shown, redacted
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redactor.redact(message), ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # The traceback formatted now, redacted: handlers' formatters use exc_text when set.
        record.exc_text = redactor.redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    return record


def install_log_redaction(secrets: Iterable[str] = ()) -> Redactor:
    """Every log record this process makes, from here on, redacted as it is made.

    By the record factory rather than a filter: a filter on the root logger never sees what other
    loggers hand their own handlers (Locust's `locust` and `locust.stats_logger`, which print the
    failure table and keep the web UI's log), and a handler added later would have none. Logging is
    the process's, so is this: a second call adds its secrets to the same Redactor.
    """
    factory = logging.getLogRecordFactory()
    redactor: Redactor | None = getattr(factory, "redactor", None)
    if redactor is None:
        redactor = Redactor()
        make_record = factory

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redact_record(make_record(*args, **kwargs), redactor)

        redacting_factory.redactor = redactor  # type: ignore[attr-defined]
        redacting_factory.wrapped = make_record  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    redactor.add(*secrets)
    return redactor


def uninstall_log_redaction() -> None:
    """Back to the record factory before install_log_redaction (for tests)."""
    factory = logging.getLogRecordFactory()
    wrapped = getattr(factory, "wrapped", None)
    if wrapped is not None:
        logging.setLogRecordFactory(wrapped)
