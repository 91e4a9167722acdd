"""A load shape from outside the suite's packages: one module, registered, with its own options.

sawtooth: users climb from 1 to --tooth-users over each --tooth, --teeth times, then the run ends.
Loaded by Locust next to the suite's locustfile: `-f locustfile.py,tests/e2e/plugins/toy_shape.py`.
"""

from __future__ import annotations

from core.options import OptionSpec
from shapes import ShapeKind, ShapeRequest, register_shape
from shapes.load_shapes import ScheduleShape
from shapes.schedules import Schedule, Stage

TOOTH_USERS = OptionSpec("--tooth-users", "", "sawtooth: users at the top of each tooth")
TOOTH = OptionSpec("--tooth", "", "sawtooth: length of one tooth (e.g. 3s)")
TEETH = OptionSpec("--teeth", "2", "sawtooth: number of teeth")


def build_sawtooth(request: ShapeRequest) -> ScheduleShape:
    read = request.read
    params = {
        "tooth_users": read.count(TOOTH_USERS.flag, minimum=2, example="4"),
        "tooth_s": read.duration(TOOTH.flag),
        "teeth": read.count(TEETH.flag, example="2"),
    }
    stages = [
        Stage(f"tooth-{n + 1}", params["tooth_s"], 1, params["tooth_users"]) for n in range(params["teeth"])
    ]
    return ScheduleShape(request.environment, "sawtooth", params, Schedule(stages))


register_shape(
    ShapeKind(
        "sawtooth", "users climb and drop, tooth after tooth", (TOOTH_USERS, TOOTH, TEETH), build_sawtooth
    )
)
