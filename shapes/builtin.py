"""The built-in shapes, each registered with its options and builder (shapes/registry.py).

Closed model (a number of users): ramp, step, spike, soak. Open model (an arrival rate): arrival
and the capacity search. An option two shapes share is declared once here and listed by both.
"""

from __future__ import annotations

import locust.runners

from core.options import OptionError, OptionSpec
from core.slo import parse_slo
from shapes import schedules
from shapes.load_shapes import ArrivalShape, CapacityShape, ScheduleShape
from shapes.options import parse_stage_classes
from shapes.registry import ShapeKind, ShapeRequest, register_shape
from shapes.runtime import is_master
from shapes.schedules import STAGE_NAMES, step_stage_names

DEFAULT_MAX_USERS = "100"
# Seconds a capacity step's judgement waits for the calls still in flight, on top of their latency.
# On a master the workers' samples arrive with their reports (every WORKER_REPORT_INTERVAL), so it
# waits a report interval more.
LOCAL_SETTLE_S = 1.0
SETTLE_MARGIN_S = 2.0

STEP_DURATION = OptionSpec("--step-duration", "", "step, capacity: length of each step (e.g. 1m)")
MAX_USERS = OptionSpec(
    "--max-users",
    DEFAULT_MAX_USERS,
    "arrival, capacity: most users the generator may start to keep up with the rate",
)
STAGE_CLASSES = OptionSpec(
    "--stage-classes",
    "",
    "which user classes a stage adds, e.g. spike=StreamingUser or step-2=VisionUser,TextUser;step-3=...",
)


def capacity_settle_s(environment: object) -> float:
    if is_master(environment):
        return float(locust.runners.WORKER_REPORT_INTERVAL) + SETTLE_MARGIN_S
    return LOCAL_SETTLE_S


def _ramp(request: ShapeRequest) -> ScheduleShape:
    read = request.read
    params = {
        "peak_users": read.count("--peak-users", example="50"),
        "ramp_up_s": read.duration("--ramp-up", positive=False),
        "hold_s": read.duration("--hold", positive=False),
        "ramp_down_s": read.duration("--ramp-down", positive=False),
    }
    classes = request.stage_classes(STAGE_NAMES["ramp"])
    return ScheduleShape(
        request.environment, "ramp", params, schedules.ramp(*params.values(), classes=classes)
    )


def _step(request: ShapeRequest) -> ScheduleShape:
    read = request.read
    params = {
        "step_users": read.count("--step-users", example="10"),
        "step_duration_s": read.duration("--step-duration"),
        "steps": read.count("--steps", example="5"),
    }
    classes = request.stage_classes(step_stage_names(params["steps"]))
    return ScheduleShape(
        request.environment, "step", params, schedules.step(*params.values(), classes=classes)
    )


def _spike(request: ShapeRequest) -> ScheduleShape:
    read = request.read
    params = {
        "base_users": read.count("--base-users", minimum=0, example="10"),
        "spike_users": read.count("--spike-users", example="50"),
        "spike_at_s": read.duration("--spike-at", positive=False),
        "spike_duration_s": read.duration("--spike-duration"),
        "recovery_s": read.duration("--recovery", positive=False),
    }
    classes = request.stage_classes(STAGE_NAMES["spike"])
    return ScheduleShape(
        request.environment, "spike", params, schedules.spike(*params.values(), classes=classes)
    )


def _soak(request: ShapeRequest) -> ScheduleShape:
    read = request.read
    params = {
        "soak_users": read.count("--soak-users", example="20"),
        "warm_up_s": read.duration("--warm-up", positive=False),
        "run_time_s": read.run_time(required=True),
    }
    classes = request.stage_classes(STAGE_NAMES["soak"])
    return ScheduleShape(
        request.environment, "soak", params, schedules.soak(*params.values(), classes=classes)
    )


def _arrival(request: ShapeRequest) -> ArrivalShape:
    read = request.read
    params = {
        "rate": read.rate("--rate"),
        "max_users": read.count("--max-users", example="100"),
        "run_time_s": read.run_time(required=True),
    }
    classes = request.stage_classes(STAGE_NAMES["arrival"]).get("arrival")
    return ArrivalShape(request.environment, params, classes=classes, **params)


def _capacity(request: ShapeRequest) -> CapacityShape:
    read = request.read
    gates = parse_slo(getattr(request.options, "slo", None))
    if not gates:
        raise OptionError(
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
        "settle_s": capacity_settle_s(request.environment),
    }
    return CapacityShape(request.environment, params, params["max_users"], search_args)


register_shape(
    ShapeKind(
        "ramp",
        "users climb linearly to --peak-users, hold, and ramp down",
        (
            OptionSpec("--peak-users", "", "ramp: users at the top of the ramp"),
            OptionSpec("--ramp-up", "", "ramp: time to go linearly from 0 to --peak-users (e.g. 2m)"),
            OptionSpec("--hold", "0s", "ramp: time to hold --peak-users"),
            OptionSpec("--ramp-down", "0s", "ramp: time to go linearly from --peak-users to 0"),
            STAGE_CLASSES,
        ),
        _ramp,
    )
)
register_shape(
    ShapeKind(
        "step",
        "--steps steps of --step-users more users each",
        (
            OptionSpec("--step-users", "", "step: users added at each step"),
            STEP_DURATION,
            OptionSpec("--steps", "", "step: number of steps"),
            STAGE_CLASSES,
        ),
        _step,
    )
)
register_shape(
    ShapeKind(
        "spike",
        "a baseline, a sudden spike of users, and the recovery",
        (
            OptionSpec("--base-users", "", "spike: baseline users"),
            OptionSpec("--spike-users", "", "spike: users added on top of the baseline during the spike"),
            OptionSpec("--spike-at", "", "spike: time from the start to the spike (e.g. 1m)"),
            OptionSpec("--spike-duration", "", "spike: length of the spike (e.g. 30s)"),
            OptionSpec("--recovery", "", "spike: time at the baseline after the spike, to watch recovery"),
            STAGE_CLASSES,
        ),
        _spike,
    )
)
register_shape(
    ShapeKind(
        "soak",
        "--soak-users held for the whole --run-time",
        (
            OptionSpec("--soak-users", "", "soak: users to hold for the whole --run-time"),
            OptionSpec("--warm-up", "0s", "soak: time to go linearly from 0 to --soak-users"),
            STAGE_CLASSES,
        ),
        _soak,
    )
)
register_shape(
    ShapeKind(
        "arrival",
        "a Poisson arrival rate (open model)",
        (
            OptionSpec("--rate", "", "arrival: target arrivals per second (Poisson, open model)"),
            MAX_USERS,
            STAGE_CLASSES,
        ),
        _arrival,
    )
)
register_shape(
    ShapeKind(
        "capacity",
        "rate steps until an --slo gate fails: the highest rate that met it",
        (
            OptionSpec("--start-rate", "", "capacity: arrival rate of the first step, per second"),
            OptionSpec("--rate-step", "", "capacity: arrival rate added at each step, per second"),
            STEP_DURATION,
            MAX_USERS,
        ),
        _capacity,
    )
)
