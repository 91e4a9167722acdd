"""LLM metrics for a Locust run: the entry points the locustfile wires in.

    @events.init_command_line_parser.add_listener
    def _(parser): llm.add_arguments(parser)          # --max-cost, --slo, --web-host default

    @events.init.add_listener
    def _(environment, **_):                            # every node
        message = llm.check_options(environment)        # budget required? --slo parses?
        if message: fail(message)
        llm.install(environment)

    in the module-level quitting listener, before run.json is written and the report built:
        llm.finalize(environment, run_folder)           # master / single process; idempotent

What install() sets up, by role:
- every process: LLM stats from each request event's Outcome; a health sampler (from test start).
- worker: its stats, totals and health samples ride on Locust's report to the master.
- master / single process: merged stats; llm_stats.csv rewritten and llm_stats_history.csv appended
  every second; health.csv; the cost budget; lost-worker tracking; the web UI's LLM tab.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

import shapes
from core.outcome import Outcome
from core.slo import SloError
from metrics import budget, final_reports, gates, health, webui
from metrics.distributed import HEALTH_KEY, LIVE_COST_INTERVAL_S, MSG_COST, REPORT_KEY, WorkerTracker
from metrics.llm_files import HistoryLog, write_stats_csv
from metrics.llm_stats import PUSD_PER_USD, LlmStats, usd_to_pusd
from metrics.recorder import request_log_name

logger = logging.getLogger(__name__)
WRITE_INTERVAL_S = 1.0
MAX_PENDING_HEALTH = 600  # a worker cut off from its master keeps 10 minutes of samples at most

check_budget_required = budget.check_budget_required

__all__ = ["LlmMetrics", "add_arguments", "check_budget_required", "check_options", "finalize", "install"]


def add_arguments(parser: Any) -> None:
    """Register --max-cost and --slo (both in the web UI form).

    Safe to call twice (a test locustfile that wraps the real one may also call it)."""
    known = getattr(parser, "_option_string_actions", {})
    if budget.OPTION not in known:
        budget.add_arguments(parser)
    if "--slo" not in known:
        gates.add_arguments(parser)


def check_options(environment: Environment) -> str | None:
    """A one-line error for a bad --max-cost or --slo, or a missing budget; None when fine."""
    if isinstance(environment.runner, WorkerRunner):
        return None
    message = budget.check_budget_required(environment)
    if message:
        return message
    try:
        gates.gates_from_options(environment.parsed_options)
    except SloError as exc:
        return str(exc)
    return None


def install(environment: Environment) -> LlmMetrics:
    """Wire LLM metrics into this process; call from the init event on every node. Idempotent."""
    existing = getattr(environment, "llm_metrics", None)
    if isinstance(existing, LlmMetrics):
        return existing
    metrics = LlmMetrics(environment)
    environment.llm_metrics = metrics
    final_reports.install(environment)
    return metrics


def finalize(environment: Environment, folder: Any) -> None:
    """Write the final LLM files and put slo, budget, lost_workers and health_warnings into
    folder.extra (a results.RunFolder; a plain Path works too, without the run.json part).

    Call in `quitting`, after Locust's master has collected the workers' last reports. Idempotent."""
    metrics = getattr(environment, "llm_metrics", None)
    if isinstance(metrics, LlmMetrics):
        metrics.finalize(folder)


class LlmMetrics:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        runner = environment.runner
        self.role = (
            "worker"
            if isinstance(runner, WorkerRunner)
            else "master"
            if isinstance(runner, MasterRunner)
            else "local"
        )
        self.node = health.node_name(self.role)
        self.stats = LlmStats(keep_current_window=self.role != "worker")
        # Since this process started, never reset: the master compares them with the request log.
        self.cum_requests = 0
        self.cum_cost_pusd = 0
        self.test_start_cost_pusd = 0  # cum_cost_pusd when the current test began: the budget's zero
        self.users_stopped = False
        self.budget = budget.BudgetGuard(environment)
        self.tracker = WorkerTracker() if self.role == "master" else None
        self.health_detector = health.HealthDetector()
        self.health_log = health.HealthLog()
        self.pending_health: list[health.Sample] = []
        self.sampler = health.HealthSampler(self.node, self._on_health_sample)
        self.history = HistoryLog()
        self.greenlets: list[gevent.Greenlet] = []
        self.started = False
        self.finalized = False

        events = environment.events
        events.request.add_listener(self._on_request)
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.reset_stats.add_listener(self._on_reset_stats)
        events.spawning_complete.add_listener(self._on_spawning_complete)
        if self.role == "worker":
            events.report_to_master.add_listener(self._on_report_to_master)
        if self.role == "master":
            events.worker_report.add_listener(self._on_worker_report)
            runner.register_message(MSG_COST, self._on_live_cost)
        if self.role != "worker":
            webui.install_llm_tab(environment, lambda: self.stats, self.folder)

    # ---- where files go --------------------------------------------------------------------------

    def folder(self) -> Path | None:
        results_dir = getattr(self.environment.parsed_options, "results_dir", None)
        if not results_dir:
            return None
        path = Path(results_dir)
        return path if path.is_dir() else None

    # ---- events ----------------------------------------------------------------------------------

    def _on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        outcome = (context or {}).get("outcome")
        if not isinstance(outcome, Outcome):
            return
        self.stats.log(outcome)
        self.cum_requests += 1
        self.cum_cost_pusd += usd_to_pusd(outcome.cost_usd)
        if self.role == "local":
            self.budget.check(self.estimated_spend_usd())

    def _on_test_start(self, **_: Any) -> None:
        # Locust cleared its own stats just before test_start: start the LLM stats over with them.
        self.stats.reset()
        self.users_stopped = False
        if self.role != "worker":
            self.budget.arm()
            self.test_start_cost_pusd = self.cum_cost_pusd
            if self.tracker is not None:
                self.tracker.new_test()
        if self.started:
            return
        self.started = True
        self.sampler.start()
        if self.role == "worker":
            self.greenlets.append(gevent.spawn(self._send_live_cost_forever))
        else:
            self.greenlets.append(gevent.spawn(self._write_forever))
        if self.role == "master":
            self.greenlets.append(gevent.spawn(self._watch_workers_forever))

    def _on_test_stop(self, **_: Any) -> None:
        self.users_stopped = True

    def _on_reset_stats(self, **_: Any) -> None:
        self.stats.reset()

    def _on_spawning_complete(self, **_: Any) -> None:
        if self.environment.reset_stats:  # --reset-stats: Locust resets its stats here too
            self.stats.reset()

    # ---- worker side -----------------------------------------------------------------------------

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        data[REPORT_KEY] = {
            "node": self.node,
            "log_file": request_log_name(),
            "stats": self.stats.serialize_and_reset(),
            "cum_requests": self.cum_requests,
            "cum_cost_pusd": self.cum_cost_pusd,
            "stopped": self.users_stopped,
        }
        if self.pending_health:
            data[HEALTH_KEY] = [list(sample) for sample in self.pending_health]
            self.pending_health.clear()

    def _send_live_cost_forever(self) -> None:
        sent = -1
        while True:
            gevent.sleep(LIVE_COST_INTERVAL_S)
            try:
                max_cost = budget.parse_max_cost(getattr(self.environment.parsed_options, "max_cost", 0))
            except budget.BudgetError:
                max_cost = 0.0
            if max_cost <= 0 or self.cum_cost_pusd == sent:
                continue
            with contextlib.suppress(Exception):  # a lost message only delays the check to the report
                self.environment.runner.send_message(MSG_COST, {"cum_cost_pusd": self.cum_cost_pusd})
                sent = self.cum_cost_pusd

    # ---- master side -----------------------------------------------------------------------------

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get(REPORT_KEY)
        if payload:
            self.stats.merge(payload.get("stats", {}))
            assert self.tracker is not None
            self.tracker.on_report(client_id, payload, time.time())
            self._check_budget()
        for sample in data.get(HEALTH_KEY) or ():
            self._record_health(tuple(sample))

    def _on_live_cost(self, environment: Environment, msg: Any, **_: Any) -> None:
        assert self.tracker is not None
        self.tracker.on_live_cost(msg.node_id, int((msg.data or {}).get("cum_cost_pusd", 0)))
        self._check_budget()

    def estimated_spend_usd(self) -> float:
        """This test's spend for the budget, from cumulative counters: --reset-stats, a shape's stages
        and the web UI's reset button clear the stats, never what was spent."""
        if self.tracker is not None:  # master: what the workers announced, live or reported
            return self.tracker.test_cost_pusd() / PUSD_PER_USD
        return (self.cum_cost_pusd - self.test_start_cost_pusd) / PUSD_PER_USD

    def _check_budget(self) -> None:
        if self.budget.active:
            self.budget.check(self.estimated_spend_usd())

    def _watch_workers_forever(self) -> None:
        runner = self.environment.runner
        while True:
            gevent.sleep(1.0)
            assert self.tracker is not None
            for client in list(runner.clients.all):
                if client.state == STATE_MISSING:
                    self.tracker.mark_missing(client.id, time.time())

    # ---- files -----------------------------------------------------------------------------------

    def _write_forever(self) -> None:
        while True:
            gevent.sleep(WRITE_INTERVAL_S)
            try:
                self._write_files(time.time())
            except OSError as exc:
                logger.warning("could not write the LLM stats files: %s", exc)

    def _write_files(self, now: float) -> None:
        folder = self.folder()
        if folder is None:
            return
        self.stats.prune(now)
        write_stats_csv(folder, self.stats.rows())
        if self.stats.total.counts["requests"]:
            self.history.open(folder)
            self.history.write(self.stats.history_rows(now, self.environment.runner.user_count))

    def _on_health_sample(self, sample: health.Sample) -> None:
        if self.role == "worker":
            self.pending_health.append(sample)
            del self.pending_health[:-MAX_PENDING_HEALTH]
        else:
            self._record_health(sample)

    def _record_health(self, sample: tuple[Any, ...]) -> None:
        try:
            timestamp, node, cpu, lag = float(sample[0]), str(sample[1]), float(sample[2]), float(sample[3])
        except (IndexError, TypeError, ValueError):
            return  # a malformed sample from a foreign worker version: skip it
        row = (timestamp, node, cpu, lag)
        self.health_detector.add(row)
        folder = self.folder()
        if folder is not None:
            self.health_log.open(folder)
            self.health_log.write([row])

    # ---- the end ---------------------------------------------------------------------------------

    def finalize(self, run_folder: Any) -> None:
        if self.finalized:
            return
        self.finalized = True
        self.sampler.stop()
        for greenlet in self.greenlets:
            greenlet.kill(block=False)
        self.greenlets.clear()
        if self.role == "worker":
            return
        folder = Path(getattr(run_folder, "folder", run_folder)) if run_folder is not None else self.folder()
        extra: dict[str, Any] = getattr(run_folder, "extra", {})
        now = time.time()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_stats_csv(folder, self.stats.rows())
            if self.stats.total.counts["requests"]:
                self.history.open(folder)
                self.history.write(self.stats.history_rows(now, self.environment.runner.user_count))
        self.history.close()
        self.health_log.close()
        counts = self.stats.total.counts
        extra["llm"] = {
            "requests": counts["requests"],
            "failures": counts["failures"],
            "blocked": counts["blocked"],
            "output_tokens": counts["output_tokens"],
            "cost_usd": round(self.stats.total.cost_usd, 9),
        }
        extra["health_warnings"] = list(self.health_detector.warnings)
        if self.budget.active or self.budget.reached_at is not None:
            extra["budget"] = self.budget.summary(self.estimated_spend_usd())
        if self.tracker is not None:
            lost = self.tracker.lost(folder, now)
            extra["lost_workers"] = lost
            for item in lost:
                counted = item["unreported_requests"]
                logged = f"; {counted} of them are in its request log" if counted else ""
                logger.warning(
                    "worker %s: its calls after its last report (%s) never reached the master%s",
                    item["node"] or item["worker"],
                    item["last_report_at"] or "none",
                    logged,
                )
        self._judge_slo(extra)

    def _judge_slo(self, extra: dict[str, Any]) -> None:
        try:
            slo_gates = gates.gates_from_options(self.environment.parsed_options)
        except SloError as exc:
            logger.error("SLO gates not judged: %s", exc)
            extra["slo_error"] = str(exc)
            return
        if not slo_gates:
            return
        results = gates.evaluate_run(slo_gates, self.stats)
        extra["slo"] = gates.results_for_run_json(results)
        print(gates.format_table(results), flush=True)
        capacity = shapes.capacity_result(self.environment)
        if capacity is not None:
            # A capacity search breaks its SLO on purpose at its last step, so the whole run's gates
            # cannot be its verdict: finding a capacity is.
            found = capacity.get("capacity_rps") is not None
            print(
                f"capacity search: {capacity.get('capacity_rps')} requests/s ({capacity.get('stop_reason')})"
            )
            self.environment.process_exit_code = 0 if found else gates.SLO_EXIT_CODE
            return
        if not all(result.passed for result in results):
            self.environment.process_exit_code = gates.SLO_EXIT_CODE
        elif self.environment.process_exit_code is None:
            # The gates are the run's verdict: failures within error_rate's limit do not fail it.
            self.environment.process_exit_code = 0
