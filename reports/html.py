"""Jinja rendering of the report: autoescape on, one self-contained file, no external resources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from core.secrets import redact_key_shapes
from reports.charts import Chart

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Table:
    """Cells are pre-formatted strings; `numeric` marks right-aligned columns."""

    columns: Sequence[str]
    rows: list[list[str]]
    numeric: Sequence[bool] = ()
    row_classes: list[str] = field(default_factory=list)
    caption: str = ""

    def row_class(self, index: int) -> str:
        return self.row_classes[index] if index < len(self.row_classes) else ""

    def is_numeric(self, index: int) -> bool:
        return index < len(self.numeric) and bool(self.numeric[index])


@dataclass
class Section:
    key: str  # HTML id, also the table-of-contents anchor
    title: str
    notes: list[str] = field(default_factory=list)  # paragraphs of plain text
    warnings: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def _environment() -> jinja2.Environment:
    # autoescape=True for every template: request names and error messages come from the run and
    # may hold markup; they must show as text, never run.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_no_api_keys,
    )


def _no_api_keys(value: Any) -> Any:
    """Every value the page shows, a second line of defence: the report runs without the run's
    key, so the files it reads were redacted with it; here anything shaped like an API key (a
    Google key, whole or cut short, a `key=` or x-goog-api-key value) is hidden too. A chart's
    data URI is left alone: it is base64, not text of the run."""
    if isinstance(value, str) and not value.startswith("data:"):
        return redact_key_shapes(value)
    return value


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def fmt_number(value: float | int | None, digits: int = 1) -> str:
    """Thousands separators, fixed decimals, and an en dash for a missing value."""
    if value is None or value != value:  # NaN
        return "–"
    if isinstance(value, int) or float(value).is_integer() and digits == 0:
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def fmt_share(value: float) -> str:
    """A fraction (0.1234) as a percentage with two decimals; an en dash for a missing value."""
    return "–" if value != value else f"{value * 100:.2f}%"


def fmt_ms(value: float) -> str:
    """Milliseconds: whole from 100 ms up, one decimal below."""
    return fmt_number(value, 0 if value == value and value >= 100 else 1)
