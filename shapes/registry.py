"""Where load shapes plug in: a shape is one module that registers its name, options and builder.

    register_shape(ShapeKind(
        name="sawtooth",
        help="users climb to --peak-users and drop, again and again",
        options=(PEAK_USERS, OptionSpec("--tooth", "", "sawtooth: length of one tooth (e.g. 30s)")),
        build=build_sawtooth,    # (ShapeRequest) -> SuiteShape
    ))

`--shape` offers every registered name, the parser and the web UI's start form get every option
of every shape (an option two shapes share is declared once and listed by both), and
`select_shape` calls the chosen shape's builder. A module registers itself when it is imported:
the built-in shapes (shapes/builtin.py) are loaded on first use; a user's own shape module is
imported by Locust when it is passed with -f (`-f locustfile.py,my_shapes.py`).

The registry is the one process-wide table of the package: it holds kinds of shape (code), never a
run's state, which lives in the run context.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.options import OptionError, OptionSpec
from shapes.load_shapes import SuiteShape
from shapes.options import OptionReader, parse_stage_classes

BUILTIN_MODULE = "shapes.builtin"


@dataclass(frozen=True)
class ShapeRequest:
    """What a shape's builder gets: the environment, the options and a reader naming the flags."""

    environment: Any
    options: Any
    name: str

    @property
    def read(self) -> OptionReader:
        return OptionReader(self.options, self.name)

    def stage_classes(self, stage_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """--stage-classes, checked against `stage_names` and the user classes Locust loaded."""
        environment = self.environment
        known = dict(environment.user_classes_by_name) if environment.user_classes else None
        return parse_stage_classes(self.read.raw("--stage-classes"), self.name, stage_names, known)


@dataclass(frozen=True)
class ShapeKind:
    name: str
    help: str
    options: tuple[OptionSpec, ...]
    build: Callable[[ShapeRequest], SuiteShape]


_KINDS: dict[str, ShapeKind] = {}


def register_shape(kind: ShapeKind) -> ShapeKind:
    """Add a shape; a second shape with the same name, or an option declared twice with two
    different defaults, is a programming error (ValueError) caught at import."""
    name = kind.name.strip().lower()
    if not name or name == "none" or name in _KINDS and _KINDS[name] is not kind:
        raise ValueError(f"shape name {kind.name!r} is empty, reserved or already registered")
    _KINDS[name] = kind
    try:
        shape_options()
    except ValueError:
        del _KINDS[name]
        raise
    return kind


def _builtins_loaded() -> dict[str, ShapeKind]:
    importlib.import_module(BUILTIN_MODULE)  # registers the built-in shapes (once: modules are cached)
    return _KINDS


def shape_names() -> tuple[str, ...]:
    return tuple(_builtins_loaded())


def shape_kind(name: str) -> ShapeKind:
    kinds = _builtins_loaded()
    if name not in kinds:
        raise OptionError(f"--shape: unknown shape {name!r} (choose one of: {', '.join(kinds)})")
    return kinds[name]


def shape_options() -> tuple[OptionSpec, ...]:
    """Every shape option once, in registration order."""
    by_flag: dict[str, OptionSpec] = {}
    for kind in _KINDS.values():
        for spec in kind.options:
            known = by_flag.setdefault(spec.flag, spec)
            if known.default != spec.default:
                raise ValueError(f"shape option {spec.flag} is declared with two defaults")
    return tuple(by_flag.values())


def all_shape_options() -> tuple[OptionSpec, ...]:
    _builtins_loaded()
    return shape_options()
