"""LLM metrics for a Locust run: the entry points the locustfile and lifecycle/ call.

    init_command_line_parser:  llm.add_arguments(parser)            # --max-cost, --slo
    init (every node):         llm.install(environment)             # the role's metrics, once
    init (master or only one): message = llm.check_options(environment)   # budget rule and --slo
    quitting, before run.json is written and the report built:
                               llm.finalize(environment, run_folder)  # idempotent
    each test's end in a web-UI session (then finalize(..., summarize=False) at quitting):
                               llm.end_test(environment, test_folder)
    anywhere after init:       llm.metrics_of(environment)          # the process's LlmMetrics

install() picks the role's class once from the runner (metrics/roles.py: LocalMetrics,
WorkerMetrics, MasterMetrics) and keeps it in the run context (core/context.py), keyed by the base
class LlmMetrics; it also wires the master/worker final-report handshake (final_reports).
"""

from __future__ import annotations

import argparse
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from core.context import run_context
from core.options import OptionError
from metrics import final_reports
from metrics.options import add_arguments, check_form_options
from metrics.roles import LlmMetrics, LocalMetrics, MasterMetrics, WorkerMetrics

__all__ = [
    "LlmMetrics",
    "add_arguments",
    "check_form_options",
    "check_options",
    "end_test",
    "finalize",
    "install",
    "metrics_class",
    "metrics_of",
]

# The runner decides the role; any other runner (LocalRunner) is the only process.
ROLES: tuple[tuple[type, type[LlmMetrics]], ...] = (
    (WorkerRunner, WorkerMetrics),
    (MasterRunner, MasterMetrics),
)


def metrics_class(runner: Any) -> type[LlmMetrics]:
    for runner_type, metrics_type in ROLES:
        if isinstance(runner, runner_type):
            return metrics_type
    return LocalMetrics


def check_options(environment: Environment) -> str | None:
    """A one-line error for a bad --max-cost or --slo, or a missing budget; None when fine.

    Workers always pass: the master judged the run before any worker got a spawn message."""
    if isinstance(environment.runner, WorkerRunner):
        return None
    options = argparse.Namespace(**vars(environment.parsed_options))
    options.host = environment.host  # the bundled emulator's URL once it is launched
    try:
        check_form_options(options)
    except OptionError as exc:
        return str(exc)
    return None


def install(environment: Environment) -> LlmMetrics:
    """Wire LLM metrics into this process; call from the init event on every node. Idempotent."""
    context = run_context(environment)
    existing = context.get(LlmMetrics)
    if existing is not None:
        return existing
    metrics = context.put(metrics_class(environment.runner)(environment), as_=LlmMetrics)
    final_reports.install(environment)
    return metrics


def metrics_of(environment: Environment) -> LlmMetrics:
    """This process's LLM metrics; a LookupError before install() ran."""
    return run_context(environment).require(LlmMetrics)


def end_test(environment: Environment, folder: Any) -> None:
    """One test of a web-UI session has ended: what finalize() does for a whole run, for this
    test's folder (a results.RunFolder), while the process goes on. Master or only process."""
    metrics = run_context(environment).get(LlmMetrics)
    if metrics is not None:
        metrics.end_test(folder)


def finalize(environment: Environment, folder: Any, summarize: bool = True) -> None:
    """Write the final LLM files, put slo, budget, llm, lost_workers and health_warnings into
    folder.extra (a results.RunFolder; a plain Path works too, without the run.json part) and set
    the exit code from the SLO verdict (master or only process; a worker only stops its loops).

    Call in `quitting`, after Locust's master has collected the workers' last reports. Idempotent;
    nothing to do when install() never ran."""
    metrics = run_context(environment).get(LlmMetrics)
    if metrics is not None:
        metrics.finalize(folder, summarize=summarize)
