"""LLM metrics by role: what one Locust process does with its Outcomes, chosen once from its runner.

    LlmMetrics          every process: LLM stats from each request event's Outcome, running totals
    │                   since the process started, a health sampler (from the first test start)
    ├── WorkerMetrics   its stats, totals and health samples ride on Locust's report to the master;
    │                   with a budget, its running cost twice a second in between
    └── RunMetrics      the process that holds the whole run: the cost budget, the LLM files, the
        │               web UI's LLM tab, and at the end the run.json summary and the SLO verdict
        ├── LocalMetrics   the only process: its own spend is the run's
        └── MasterMetrics  merges the workers' reports and tracks each worker (lost ones included)

metrics/llm.py picks the class (install) and hands it out (metrics_of); the parts live apart:
budget.BudgetGuard, distributed.WorkerTracker, run_files.LlmFiles, webui.install_llm_tab,
gates.judge_run and verdict.exit_code.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust.env import Environment

import shapes
from core.options import OptionError
from core.outcome import Outcome
from metrics import budget, distributed, gates, health, llm_series, verdict, webui
from metrics.llm_series import LlmSeries
from metrics.llm_stats import PUSD_PER_USD, LlmStats, usd_to_pusd
from metrics.recorder import request_log_name
from metrics.run_files import LlmFiles

WRITE_INTERVAL_S = 1.0
MAX_PENDING_HEALTH = 600  # a worker cut off from its master keeps 10 minutes of samples at most


class LlmMetrics:
    """The part every role shares; subclasses fill in the hooks below."""

    role: ClassVar[str]
    # The response-times cache gives the history file's "current" percentiles: only where it is written.
    keeps_current_window: ClassVar[bool] = True

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.node = health.node_name(self.role)
        self.stats = LlmStats(keep_current_window=self.keeps_current_window)
        # Since this process started, never reset: the master compares them with the request log.
        self.cum_requests = 0
        self.cum_cost_pusd = 0
        self.users_stopped = False
        self.sampler = health.HealthSampler(self.node, self._on_health_sample)
        self.greenlets: list[gevent.Greenlet] = []
        self.started = False
        self.finalized = False

        events = environment.events
        events.request.add_listener(self._on_request)
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.reset_stats.add_listener(self._on_reset_stats)
        events.spawning_complete.add_listener(self._on_spawning_complete)

    # ---- hooks -----------------------------------------------------------------------------------

    def _after_request(self) -> None:
        """An Outcome was just counted."""

    def _new_test(self) -> None:
        """A test starts (after the stats were reset)."""

    def _background_loops(self) -> list[Callable[[], None]]:
        """Greenlets to run from the first test start until finalize."""
        return []

    def _on_health_sample(self, sample: health.Sample) -> None:
        raise NotImplementedError

    def _finish(self, run_folder: Any) -> None:
        """The end of the process's metrics, once, after the sampler and loops have stopped."""

    def end_test(self, run_folder: Any) -> None:
        """One test's end in a web-UI session (its own folder, summary and verdict); the process's
        sampler and loops go on for the next test."""

    # ---- events ----------------------------------------------------------------------------------

    def _on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        outcome = (context or {}).get("outcome")
        if not isinstance(outcome, Outcome):
            return
        self.stats.log(outcome)
        self.cum_requests += 1
        self.cum_cost_pusd += usd_to_pusd(outcome.cost_usd)
        self._after_request()

    def _on_test_start(self, **_: Any) -> None:
        # Locust cleared its own stats just before test_start: start the LLM stats over with them.
        self.stats.reset()
        self.users_stopped = False
        self._new_test()
        if self.started:
            return
        self.started = True
        self.sampler.start()
        self.greenlets.extend(gevent.spawn(loop) for loop in self._background_loops())

    def _on_test_stop(self, **_: Any) -> None:
        self.users_stopped = True

    def _on_reset_stats(self, **_: Any) -> None:
        self.stats.reset()

    def _on_spawning_complete(self, **_: Any) -> None:
        if self.environment.reset_stats:  # --reset-stats: Locust resets its stats here too
            self.stats.reset()

    # ---- the end ---------------------------------------------------------------------------------

    def finalize(self, run_folder: Any, summarize: bool = True) -> None:
        """Stop sampling and the background loops, then the role's own end (without it when each
        test was summarized at its end_test). Idempotent."""
        if self.finalized:
            return
        self.finalized = True
        self.sampler.stop()
        for greenlet in self.greenlets:
            greenlet.kill(block=False)
        self.greenlets.clear()
        if summarize:
            self._finish(run_folder)


class WorkerMetrics(LlmMetrics):
    role = "worker"
    keeps_current_window = False  # it reports and resets every 3 s

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.pending_health: list[health.Sample] = []
        environment.events.report_to_master.add_listener(self._on_report_to_master)

    def _background_loops(self) -> list[Callable[[], None]]:
        return [self._send_live_cost_forever]

    def _on_health_sample(self, sample: health.Sample) -> None:
        self.pending_health.append(sample)
        del self.pending_health[:-MAX_PENDING_HEALTH]

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        data[distributed.REPORT_KEY] = {
            "node": self.node,
            "log_file": request_log_name(),
            "stats": self.stats.serialize_and_reset(),
            "cum_requests": self.cum_requests,
            "cum_cost_pusd": self.cum_cost_pusd,
            "stopped": self.users_stopped,
        }
        if self.pending_health:
            data[distributed.HEALTH_KEY] = [list(sample) for sample in self.pending_health]
            self.pending_health.clear()

    def _send_live_cost_forever(self) -> None:
        sent = -1
        while True:
            gevent.sleep(distributed.LIVE_COST_INTERVAL_S)
            try:
                max_cost = budget.parse_max_cost(getattr(self.environment.parsed_options, "max_cost", 0))
            except OptionError:
                max_cost = 0.0  # the master judges the options and says what is wrong
            if max_cost <= 0 or self.cum_cost_pusd == sent:
                continue
            with contextlib.suppress(Exception):  # a lost message only delays the check to the report
                self.environment.runner.send_message(
                    distributed.MSG_COST, {"cum_cost_pusd": self.cum_cost_pusd}
                )
                sent = self.cum_cost_pusd


class RunMetrics(LlmMetrics):
    """The whole run's stats live here: the budget, the files, the LLM tab and the verdict too."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.budget = budget.BudgetGuard(environment)
        self.files = LlmFiles(environment.parsed_options)
        self.health_detector = health.HealthDetector()
        self.series = LlmSeries()  # the LLM tab's charts
        webui.install_llm_tab(environment, self, self.files.folder)

    def estimated_spend_usd(self) -> float:
        """This test's spend for the budget, from cumulative counters: --reset-stats, a shape's stages
        and the web UI's reset button clear the stats, never what was spent."""
        raise NotImplementedError

    def _start_spend_count(self) -> None:
        """A new test: its spend starts at zero."""
        raise NotImplementedError

    def folder(self) -> Path | None:
        return self.files.folder()

    def _new_test(self) -> None:
        self.budget.arm()
        self._start_spend_count()
        self.series.reset()

    def _check_budget(self) -> None:
        if self.budget.active:
            self.budget.check(self.estimated_spend_usd())

    def _background_loops(self) -> list[Callable[[], None]]:
        return [self._write_forever, self._sample_series_forever]

    def _write_forever(self) -> None:
        while True:
            gevent.sleep(WRITE_INTERVAL_S)
            self.files.tick(self.stats, self.environment.runner.user_count, time.time())

    def _sample_series_forever(self) -> None:
        while True:
            gevent.sleep(llm_series.FIRST_INTERVAL_S)
            now = time.time()
            # Only while a test runs: idle time after the stop would draw flat lines.
            if not self.users_stopped and self.series.due(now):
                users = self.environment.runner.user_count
                point = llm_series.point_from_stats(self.stats, now, users, self.estimated_spend_usd())
                self.series.add(point)

    def _on_health_sample(self, sample: health.Sample) -> None:
        self._record_health(sample)

    def _record_health(self, sample: tuple[Any, ...]) -> None:
        try:
            timestamp, node, cpu, lag = float(sample[0]), str(sample[1]), float(sample[2]), float(sample[3])
        except (IndexError, TypeError, ValueError):
            return  # a malformed sample from a foreign worker version: skip it
        row = (timestamp, node, cpu, lag)
        self.health_detector.add(row)
        self.files.write_health(row)

    def _summarize(self, extra: dict[str, Any], folder: Path | None, now: float) -> None:
        """Role-specific entries of run.json's extra."""

    def _finish(self, run_folder: Any) -> None:
        self.end_test(run_folder)

    def end_test(self, run_folder: Any) -> None:
        """Final LLM files; slo, budget, llm, lost_workers and health_warnings into run_folder.extra
        (a results.RunFolder; a plain Path works too, without the run.json part); the exit code."""
        folder = Path(getattr(run_folder, "folder", run_folder)) if run_folder is not None else self.folder()
        extra: dict[str, Any] = getattr(run_folder, "extra", {})
        now = time.time()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.files.write_stats(folder, self.stats, self.environment.runner.user_count, now)
        self.files.close(folder)
        counts = self.stats.total.counts
        extra["llm"] = {
            "requests": counts["requests"],
            "failures": counts["failures"],
            "blocked": counts["blocked"],
            "cancelled": counts["cancelled"],
            "output_tokens": counts["output_tokens"],
            "cost_usd": round(self.stats.total.cost_usd, 9),
        }
        extra["health_warnings"] = list(self.health_detector.warnings)
        if self.budget.active or self.budget.reached_at is not None:
            extra["budget"] = self.budget.summary(self.estimated_spend_usd())
        self._summarize(extra, folder, now)
        judgement = gates.judge_run(
            self.environment.parsed_options, self.stats, shapes.capacity_result(self.environment), extra
        )
        self.environment.process_exit_code = verdict.exit_code(
            self.environment.process_exit_code,
            run_broken=bool(extra.get("lost_workers")),  # the rest of the run went without its load
            slo_passed=judgement.slo_passed,
            capacity_found=judgement.capacity_found,
        )


class LocalMetrics(RunMetrics):
    role = "local"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.test_start_cost_pusd = 0  # cum_cost_pusd when the current test began: the budget's zero

    def estimated_spend_usd(self) -> float:
        return (self.cum_cost_pusd - self.test_start_cost_pusd) / PUSD_PER_USD

    def _start_spend_count(self) -> None:
        self.test_start_cost_pusd = self.cum_cost_pusd

    def _after_request(self) -> None:
        self._check_budget()


class MasterMetrics(RunMetrics):
    role = "master"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.tracker = distributed.WorkerTracker()
        environment.events.worker_report.add_listener(self._on_worker_report)
        environment.runner.register_message(distributed.MSG_COST, self._on_live_cost)

    def estimated_spend_usd(self) -> float:
        # What the workers announced, live or reported.
        return self.tracker.test_cost_pusd() / PUSD_PER_USD

    def _start_spend_count(self) -> None:
        self.tracker.new_test()

    def _background_loops(self) -> list[Callable[[], None]]:
        runner, tracker = self.environment.runner, self.tracker
        return [*super()._background_loops(), lambda: distributed.watch_missing_forever(runner, tracker)]

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get(distributed.REPORT_KEY)
        if payload:
            self.stats.merge(payload.get("stats", {}))
            self.tracker.on_report(client_id, payload, time.time(), users=data.get("user_count"))
            self._check_budget()
        for sample in data.get(distributed.HEALTH_KEY) or ():
            self._record_health(tuple(sample))

    def _on_live_cost(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.tracker.on_live_cost(msg.node_id, int((msg.data or {}).get("cum_cost_pusd", 0)))
        self._check_budget()

    def _summarize(self, extra: dict[str, Any], folder: Path | None, now: float) -> None:
        # A worker that refused to start is reported as such (lifecycle puts it there), not as lost.
        refused = frozenset(str(item.get("worker")) for item in extra.get("refused_workers") or ())
        lost = self.tracker.lost(folder, now, skip=refused)
        extra["lost_workers"] = lost
        distributed.warn_lost(lost)
