"""select_shape(): from parsed options to a ready shape instance, or None for Locust's own -u/-r/-t."""

from __future__ import annotations

from typing import Any

import locust.runners

from core.slo import SloError, parse_slo
from shapes import schedules
from shapes.errors import ShapeOptionError
from shapes.load_shapes import ArrivalShape, CapacityShape, ScheduleShape, SuiteShape
from shapes.options import NO_SHAPE, SHAPE_NAMES, OptionReader, parse_stage_classes, stage_names_for
from shapes.runtime import is_master

# Seconds a capacity step's judgement waits for the calls still in flight, on top of their latency.
# On a master the workers' samples arrive with their reports (every WORKER_REPORT_INTERVAL), so it
# waits a report interval more.
LOCAL_SETTLE_S = 1.0
SETTLE_MARGIN_S = 2.0


def capacity_settle_s(environment: Any) -> float:
    if is_master(environment):
        return float(locust.runners.WORKER_REPORT_INTERVAL) + SETTLE_MARGIN_S
    return LOCAL_SETTLE_S


def select_shape(environment: Any, options: Any = None) -> SuiteShape | None:
    """The shape the options ask for, validated; None when --shape is absent or 'none'.

    Raises ShapeOptionError (one line, naming the option) on a missing or bad value.
    `options` defaults to environment.parsed_options (the web UI hook passes the form's values).
    """
    options = options if options is not None else environment.parsed_options
    name = str(getattr(options, "shape", None) or NO_SHAPE).strip().lower()
    if name == NO_SHAPE:
        return None
    if name not in SHAPE_NAMES:
        raise ShapeOptionError(f"--shape: unknown shape {name!r} (choose one of: {', '.join(SHAPE_NAMES)})")
    read = OptionReader(options, name)
    known_classes = dict(environment.user_classes_by_name) if environment.user_classes else None

    def stage_classes(steps: int = 0) -> dict[str, tuple[str, ...]]:
        return parse_stage_classes(
            read.raw("--stage-classes"), name, stage_names_for(name, steps), known_classes
        )

    if name == "ramp":
        params = {
            "peak_users": read.count("--peak-users", example="50"),
            "ramp_up_s": read.duration("--ramp-up", positive=False),
            "hold_s": read.duration("--hold", positive=False),
            "ramp_down_s": read.duration("--ramp-down", positive=False),
        }
        schedule = schedules.ramp(*params.values(), classes=stage_classes())
        return ScheduleShape(environment, name, params, schedule)
    if name == "step":
        params = {
            "step_users": read.count("--step-users", example="10"),
            "step_duration_s": read.duration("--step-duration"),
            "steps": read.count("--steps", example="5"),
        }
        schedule = schedules.step(*params.values(), classes=stage_classes(params["steps"]))
        return ScheduleShape(environment, name, params, schedule)
    if name == "spike":
        params = {
            "base_users": read.count("--base-users", minimum=0, example="10"),
            "spike_users": read.count("--spike-users", example="50"),
            "spike_at_s": read.duration("--spike-at", positive=False),
            "spike_duration_s": read.duration("--spike-duration"),
            "recovery_s": read.duration("--recovery", positive=False),
        }
        schedule = schedules.spike(*params.values(), classes=stage_classes())
        return ScheduleShape(environment, name, params, schedule)
    if name == "soak":
        params = {
            "soak_users": read.count("--soak-users", example="20"),
            "warm_up_s": read.duration("--warm-up", positive=False),
            "run_time_s": read.run_time(required=True),
        }
        schedule = schedules.soak(*params.values(), classes=stage_classes())
        return ScheduleShape(environment, name, params, schedule)
    if name == "arrival":
        params = {
            "rate": read.rate("--rate"),
            "max_users": read.count("--max-users", example="100"),
            "run_time_s": read.run_time(required=True),
        }
        classes = stage_classes().get("arrival")
        return ArrivalShape(environment, params, classes=classes, **params)
    return _capacity(environment, options, read)


def _capacity(environment: Any, options: Any, read: OptionReader) -> CapacityShape:
    slo_text = getattr(options, "slo", None)
    try:
        gates = parse_slo(slo_text)
    except SloError as exc:
        raise ShapeOptionError(str(exc)) from None
    if not gates:
        raise ShapeOptionError(
            "--slo is required for --shape capacity (e.g. --slo 'ttft_p95<=800ms,error_rate<=1%')"
        )
    parse_stage_classes(read.raw("--stage-classes"), "capacity", (), None)  # rejects the option
    params = {
        "start_rate": read.rate("--start-rate"),
        "rate_step": read.rate("--rate-step"),
        "step_duration_s": read.duration("--step-duration"),
        "max_users": read.count("--max-users", example="100"),
        "run_time_s": read.run_time(required=False),
        "slo": [gate.expr for gate in gates],
    }
    search_args = {
        "start_rate": params["start_rate"],
        "rate_step": params["rate_step"],
        "step_duration_s": params["step_duration_s"],
        "gates": gates,
        "run_time_s": params["run_time_s"],
        "settle_s": capacity_settle_s(environment),
    }
    return CapacityShape(environment, params, params["max_users"], search_args)
