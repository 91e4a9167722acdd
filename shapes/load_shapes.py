"""The LoadTestShape classes Locust drives: one per kind of schedule.

They are never picked up from a locustfile (abstract = True on each, since Locust's metaclass resets
the flag on every subclass); select_shape() builds one from the options and the locustfile's
listener sets it as environment.shape_class. Each tick turns elapsed seconds into a Plan with the
pure code of schedules.py and open_model.py, logs the stage and publishes it to the workers.
Elapsed seconds and stage epochs come from the environment's clock (shapes/clock.py), real by default.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import LoadTestShape

from shapes.clock import Clock
from shapes.open_model import OPEN_MODEL_SPAWN_RATE, CapacitySearch, UserSizer
from shapes.runtime import end_run, pacer_signal, publish, runtime_for
from shapes.schedules import Plan, Schedule

logger = logging.getLogger(__name__)

TickResult = tuple[int, float] | tuple[int, float, list[Any]] | None


class SuiteShape(LoadTestShape):
    """Common tick(): plan, log the stage, tell the workers, resolve per-stage user classes."""

    abstract = True
    use_common_options = True  # keeps -u/-r/-t visible in the web UI: soak and arrival read -t
    shape_name = ""
    collects_samples = False  # the capacity search needs every call's outcome

    def __init__(self, environment: Any, params: dict[str, Any]) -> None:
        super().__init__()
        self.environment = environment
        self.params = params
        self.runner = environment.runner
        self.clock: Clock = runtime_for(environment).clock
        self.start_time = self.clock.monotonic()  # LoadTestShape's own field: the run time counts from it
        self.start_epoch = self.clock.now()
        self.uses_classes = False

    # Locust calls reset_time() when a run starts (before the first tick): a new run, a new state.
    # A master calls it again at its first spawn, after the first tick: that run is already under
    # way (its stage is published), so its clock and state are kept.
    def reset_time(self) -> None:
        if runtime_for(self.environment).stage:
            return
        self.start_time = self.clock.monotonic()
        self.start_epoch = self.clock.now()
        runtime_for(self.environment).begin_run()
        self.on_new_run()

    def get_run_time(self) -> float:
        """Seconds since the run started, on the environment's clock."""
        return self.clock.monotonic() - self.start_time

    def on_new_run(self) -> None:
        """Subclasses reset their own state here."""

    def plan(self, t: float) -> Plan | None:
        raise NotImplementedError

    def planned_end_s(self) -> float | None:
        return None

    def describe(self) -> dict[str, Any]:
        """For run.json["shape"]."""
        return {"name": self.shape_name, "params": dict(self.params)}

    def tick(self) -> TickResult:
        t = self.get_run_time()
        plan = self.plan(t)
        if plan is None:
            end = self.planned_end_s()
            end_run(self.environment, self.start_epoch + (min(t, end) if end is not None else t))
            return None
        runtime_for(self.environment).stage_log.enter(plan.stage, self.start_epoch + plan.stage_start_s)
        publish(self.environment, plan.stage, plan.rate, self.collects_samples)
        classes = self._resolve_classes(plan)
        if classes is None:
            return (plan.users, plan.spawn_rate)
        return (plan.users, plan.spawn_rate, classes)

    def _resolve_classes(self, plan: Plan) -> list[Any] | None:
        if not self.uses_classes:
            return None
        every_class = list(self.environment.user_classes)
        if not plan.classes:
            # Once any stage narrowed the classes, Locust keeps that narrowing for later spawns:
            # a mixed stage must hand the full list back explicitly.
            return every_class
        by_name = self.environment.user_classes_by_name
        chosen = [by_name[name] for name in plan.classes if name in by_name]
        if len(chosen) != len(plan.classes):
            logger.error(
                "--stage-classes: some of %s are not loaded; stage %s uses every class",
                plan.classes,
                plan.stage,
            )
            return every_class
        return chosen

    def _user_count(self) -> int:
        runner = self.runner or self.environment.runner
        return int(runner.user_count) if runner is not None else 0


class ScheduleShape(SuiteShape):
    """ramp, step, spike, soak: closed model, users follow a fixed schedule, then the run ends."""

    abstract = True

    def __init__(self, environment: Any, name: str, params: dict[str, Any], schedule: Schedule) -> None:
        super().__init__(environment, params)
        self.shape_name = name
        self.schedule = schedule
        self.uses_classes = schedule.uses_classes

    def plan(self, t: float) -> Plan | None:
        return self.schedule.at(t)

    def planned_end_s(self) -> float | None:
        return self.schedule.total_s


class ArrivalShape(SuiteShape):
    """Open model at a constant Poisson rate for --run-time, growing users as needed."""

    abstract = True
    shape_name = "arrival"

    def __init__(
        self,
        environment: Any,
        params: dict[str, Any],
        rate: float,
        max_users: int,
        run_time_s: float,
        classes: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(environment, params)
        self.rate = rate
        self.max_users = max_users
        self.run_time_s = run_time_s
        self.classes = classes
        self.uses_classes = bool(classes)
        self.sizer = UserSizer(max_users)

    def on_new_run(self) -> None:
        self.sizer = UserSizer(self.max_users)

    def plan(self, t: float) -> Plan | None:
        if t >= self.run_time_s:
            return None
        users = self.sizer.update(self.rate, self._user_count(), pacer_signal(self.environment))
        return Plan("arrival", 0.0, self.run_time_s, users, OPEN_MODEL_SPAWN_RATE, self.rate, self.classes)

    def planned_end_s(self) -> float | None:
        return self.run_time_s


class CapacityShape(SuiteShape):
    """Open model stepping the rate up until a step's own window breaks the SLO."""

    abstract = True
    shape_name = "capacity"
    collects_samples = True

    def __init__(
        self, environment: Any, params: dict[str, Any], max_users: int, search_args: dict[str, Any]
    ) -> None:
        super().__init__(environment, params)
        self.max_users = max_users
        self._search_args = search_args
        self.on_new_run()

    def on_new_run(self) -> None:
        self.search = CapacitySearch(**self._search_args)
        self.sizer = UserSizer(self.max_users)

    def plan(self, t: float) -> Plan | None:
        runtime = runtime_for(self.environment)
        self.search.update(t, self._window)
        runtime.capacity = self.result()
        judged_until = len(self.search.steps) * self.search.step_duration_s
        runtime.collector.forget_before(self.start_epoch + judged_until)
        rate = self.search.rate_at(t)
        if rate is None:
            logger.info(
                "Capacity search over (%s): capacity %s rps",
                self.search.stop_reason,
                self.search.capacity_rps,
            )
            return None
        index = self.search.step_index(t)
        duration = self.search.step_duration_s
        users = self.sizer.update(rate, self._user_count(), pacer_signal(self.environment))
        return Plan(
            f"rate-{rate:g}", index * duration, (index + 1) * duration, users, OPEN_MODEL_SPAWN_RATE, rate
        )

    def _window(self, start_s: float, end_s: float) -> Any:
        collector = runtime_for(self.environment).collector
        return collector.window(self.start_epoch + start_s, self.start_epoch + end_s)

    def result(self) -> dict[str, Any]:
        result = self.search.result()
        for step in result["steps"]:
            step["start"] = self.start_epoch + step["start_s"]
            step["end"] = self.start_epoch + step["end_s"]
        return result
