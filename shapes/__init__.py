"""Load shapes: ramp, step, spike, soak (closed model) and arrival, capacity (open model).

Integration (lifecycle/ does it): `add_shape_arguments(parser)` at init_command_line_parser,
`setup(environment)` at init on every node (raises core.options.OptionError on a bad option); the
web UI's start form picks the shape through `select_shape` (lifecycle/form.py). A new shape is one
module that calls `register_shape` (shapes/registry.py).

Users call `shapes.get_pacer(environment)` each iteration and, when it is not None, wait on it;
Outcomes are tagged with `shapes.current_stage(environment)`; at the end of a run, run.json gets
`shapes.shape_info`, `shapes.stage_log` and `shapes.capacity_result`.
"""

from __future__ import annotations

from typing import Any

from core.options import OptionError
from shapes.load_shapes import SuiteShape
from shapes.pacing import ArrivalPacer, get_pacer
from shapes.registry import ShapeKind, ShapeRequest, register_shape, shape_names
from shapes.runtime import is_worker, runtime_for, wire
from shapes.selection import NO_SHAPE, add_shape_arguments, select_shape

__all__ = [
    "NO_SHAPE",
    "ArrivalPacer",
    "OptionError",
    "ShapeKind",
    "ShapeRequest",
    "SuiteShape",
    "add_shape_arguments",
    "capacity_result",
    "current_stage",
    "get_pacer",
    "register_shape",
    "select_shape",
    "shape_names",
    "setup",
    "shape_info",
    "stage_log",
]


def setup(environment: Any) -> SuiteShape | None:
    """Wire the package into a Locust environment; call once from the `init` event on every node.

    Registers the listeners and the worker message handler. On a master or a local run it also
    selects the shape from the command-line options, sets environment.shape_class (None without
    --shape). Raises OptionError on a bad
    option. Returns the shape, or None (always None on a worker: shapes run on the master).
    """
    wire(environment)
    if is_worker(environment):
        return None
    shape = select_shape(environment)
    environment.shape_class = shape
    return shape


def current_stage(environment: Any) -> str:
    """The stage running now ("" outside a shaped run), on any node: for tagging Outcomes."""
    return runtime_for(environment).stage


def stage_log(environment: Any) -> list[dict[str, Any]]:
    """[{"name", "start", "end"}] epoch seconds, for run.json["stages"] (master/local).

    Boundaries are the planned ones; the last stage ends when the run ended. A stage still running
    has end None.
    """
    return runtime_for(environment).stage_log.as_list()


def capacity_result(environment: Any) -> dict[str, Any] | None:
    """The capacity search's result for run.json, or None when the run was not a capacity search.

    {"capacity_rps": float | None, "stop_reason": "slo_breached" | "generator_limited" |
    "no_requests" | "run_time" | "max_steps" | "stopped" | "running", "slo": [expr],
    "steps": [{"index", "rate", "start", "end", "start_s", "end_s", "requests", "achieved_rps",
    "lag_p50_ms", "lag_p95_ms", "gates": [{"expr", "metric", "threshold", "unit", "value",
    "passed"}], "passed", "generator_limited"}]}
    """
    runtime = runtime_for(environment)
    if runtime.capacity is None:
        return None
    result = dict(runtime.capacity)
    if result["stop_reason"] == "running" and not runtime.stage:
        result["stop_reason"] = "stopped"  # the run ended before the search did (stopped by hand, -t)
    return result


def shape_info(environment: Any) -> dict[str, Any] | None:
    """{"name", "params"} of the shape in use, for run.json["shape"]; None without a suite shape."""
    shape = getattr(environment, "shape_class", None)
    return shape.describe() if isinstance(shape, SuiteShape) else None
