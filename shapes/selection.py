"""From options to a shape: the --shape option and every registered shape's options on Locust's
parser, and select_shape() building the chosen one (or None for Locust's own -u/-r/-t)."""

from __future__ import annotations

from typing import Any

from shapes.load_shapes import SuiteShape
from shapes.registry import ShapeRequest, all_shape_options, shape_kind, shape_names

NO_SHAPE = "none"


def add_shape_arguments(parser: Any) -> None:
    """Register --shape and every registered shape's options; call from an
    init_command_line_parser listener.

    Plain add_argument with include_in_web_ui (argument groups never reach the web UI). Every value
    is a string (default "" = not given) parsed by the shape's builder, so the command line, config
    files, LOCUST_* variables and the web form go through the same checks. --slo is not registered
    here: metrics/ owns it and the capacity shape reads it.
    """
    kinds = shape_names()
    parser.add_argument(
        "--shape",
        default=NO_SHAPE,
        choices=[NO_SHAPE, *kinds],
        env_var="LOCUST_SHAPE",
        include_in_web_ui=True,
        help="load shape; 'none' keeps Locust's own -u/-r/-t",
    )
    for spec in all_shape_options():
        spec.add_to(parser)


def option_dests() -> frozenset[str]:
    """Every option a shape reads from the parsed options (and the web form), --shape included."""
    return frozenset(spec.dest for spec in all_shape_options()) | {"shape"}


def select_shape(environment: Any, options: Any = None) -> SuiteShape | None:
    """The shape the options ask for, validated; None when --shape is absent or 'none'.

    Raises OptionError (one line, naming the option) on a missing or bad value.
    `options` defaults to environment.parsed_options (the web UI hook passes the form's values).
    """
    options = options if options is not None else environment.parsed_options
    name = str(getattr(options, "shape", None) or NO_SHAPE).strip().lower()
    if name == NO_SHAPE:
        return None
    return shape_kind(name).build(ShapeRequest(environment, options, name))
