"""`--compare FLAG=V1,V2[,...]`: what to run, one arm per value of one option.

A headless run given `--compare` (or its short form for client policies, `--compare-policies`)
sends no load itself: it runs the same command line once per value, one child Locust each, into
`<results-dir>/<nn>-<flag>-<value>/`, then builds one comparison report (lifecycle/arms_driver.py
runs them). This module is the plan, pure and checked up front: the option and its values, each
arm's folder and command line, and the exit code of the whole comparison.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.options import OptionError
from metrics import verdict
from metrics.results import SECRET_OPTION_NAMES, SECRET_WORDS

COMPARE = "--compare"
COMPARE_POLICIES = "--compare-policies"
POLICY_FLAG = "client-policy"
# Options an arm cannot vary: the comparison's own, where its results go, and the process's role.
NOT_COMPARED = frozenset(
    {"compare", "compare-policies", "results-dir", "headless", "master", "worker", "processes", "help",
     "version", "config", "locustfile", "list", "show-task-ratio", "show-task-ratio-json"}
)  # fmt: skip
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})
FALSE_WORDS = frozenset({"false", "off", "no", "0"})
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=-]+")
MAX_VALUE_NAME = 48


def add_arguments(parser: Any) -> None:
    """Headless start-up options: the web UI runs one test at a time, so they stay off its form."""
    parser.add_argument(
        COMPARE,
        default="",
        metavar="FLAG=V1,V2",
        help="run the same workload once per value of one option (e.g. retries=0,2 or model=A,B), each "
        "into its own results folder, then write one comparison report; headless only",
        include_in_web_ui=False,
    )
    parser.add_argument(
        COMPARE_POLICIES,
        default="",
        metavar="P1,P2",
        help=f"short for {COMPARE} {POLICY_FLAG}=P1,P2 (e.g. retry,aimd,breaker)",
        include_in_web_ui=False,
    )


def requested(options: Any) -> str:
    """The comparison asked for, as FLAG=V1,V2; "" when none. Raises OptionError for both forms."""
    spec = str(getattr(options, "compare", "") or "").strip()
    policies = str(getattr(options, "compare_policies", "") or "").strip()
    if spec and policies:
        raise OptionError(f"{COMPARE} and {COMPARE_POLICIES} were both given: keep one of them")
    return f"{POLICY_FLAG}={policies}" if policies else spec


@dataclass(frozen=True)
class Arm:
    number: int  # from 1, in the order the values were given
    flag: str  # the option's name without dashes, e.g. retries
    value: str  # as given
    args: tuple[str, ...]  # what the arm adds to the command line
    dest: str  # the option's attribute on the parsed options
    parsed: Any  # the value as the parser reads it

    @property
    def label(self) -> str:
        return f"{self.number:02d} {self.flag}={self.value}"

    @property
    def folder_name(self) -> str:
        return arm_folder_name(self.number, self.flag, self.value)


def arm_folder_name(number: int, flag: str, value: str) -> str:
    """<nn>-<flag>-<value>, readable and safe on any filesystem: other characters become _."""
    safe = UNSAFE_NAME_CHARS.sub("_", value).strip("._") or "empty"
    return f"{number:02d}-{flag}-{safe[:MAX_VALUE_NAME]}"


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    # argparse keeps no public index of its options by name.
    action = parser._option_string_actions.get(f"--{flag}")  # noqa: SLF001
    if action is None:
        raise OptionError(
            f"{COMPARE} {flag}=...: this run has no option --{flag}; name one of its options, "
            "e.g. --compare retries=0,2 (see locust --help)"
        )
    if flag in NOT_COMPARED:
        raise OptionError(
            f"{COMPARE} {flag}=...: --{flag} cannot differ between arms; compare another option"
        )
    if action.dest in SECRET_OPTION_NAMES or SECRET_WORDS.search(action.dest):
        raise OptionError(f"{COMPARE} {flag}: --{flag} holds a secret and is never compared")
    return action


def _arm_args(parser: argparse.ArgumentParser, action: argparse.Action, flag: str, value: str) -> tuple:
    """(command-line args, parsed value) for one value; OptionError naming it when the option refuses it."""
    if action.nargs == 0:
        if not isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
            raise OptionError(f"{COMPARE} {flag}=...: --{flag} takes no value; compare another option")
        word = value.lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise OptionError(f"{COMPARE} {flag}={value}: --{flag} is on or off; give true,false")
        on = word in TRUE_WORDS
        return ((f"--{flag}",) if on else ()), on
    try:
        parsed = parser._get_values(action, [value])  # noqa: SLF001  (the option's own type and choices)
    except argparse.ArgumentError as exc:
        raise OptionError(f"{COMPARE} {flag}={value}: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{COMPARE} {flag}={value}: --{flag} refuses it ({exc})") from None
    return (f"--{flag}={value}",), parsed


def plan_arms(spec: str, parser: argparse.ArgumentParser) -> list[Arm]:
    """The arms of FLAG=V1,V2[,...], their values checked by the option's own type and choices.
    Raises OptionError (one line naming the option and the fix)."""
    flag, equals, values_text = spec.partition("=")
    flag = flag.strip().lstrip("-").replace("_", "-")
    if not flag or not equals:
        raise OptionError(f"{COMPARE} {spec!r}: give FLAG=V1,V2, e.g. --compare retries=0,2")
    values = [value.strip() for value in values_text.split(",")]
    if len(values) < 2 or any(not value for value in values):
        raise OptionError(
            f"{COMPARE} {flag}={values_text}: give at least two non-empty values, comma-separated "
            f"(e.g. --compare {flag}=A,B)"
        )
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise OptionError(f"{COMPARE} {flag}=...: {', '.join(repeated)} given twice; give each value once")
    action = _action(parser, flag)
    arms = []
    for number, value in enumerate(values, start=1):
        args, parsed = _arm_args(parser, action, flag, value)
        arms.append(Arm(number, flag, value, args, action.dest, parsed))
    return arms


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def without_options(argv: Sequence[str], actions: Sequence[argparse.Action]) -> list[str]:
    """argv without every occurrence of these options (`--opt V`, `--opt=V`, `-tV`) and their values."""
    kept: list[str] = []
    skip_next = False
    for token in argv:
        if skip_next:
            skip_next = False
            continue
        action = next((a for a in actions if _names(a, token)), None)
        if action is None:
            kept.append(token)
            continue
        attached = "=" in token or (not token.startswith("--") and len(token) > 2)
        skip_next = _takes_value(action) and not attached
    return kept


def _names(action: argparse.Action, token: str) -> bool:
    for option in action.option_strings:
        if token == option or token.startswith(option + "="):
            return True
        if not option.startswith("--") and token.startswith(option) and _takes_value(action):
            return True  # a short option with its value attached: -t10s
    return False


def child_argv(
    argv: Sequence[str], parser: argparse.ArgumentParser, arm: Arm, folder: Path, *, drop: Sequence[str] = ()
) -> list[str]:
    """The arm's command line: the driver's minus the comparison's options, the results folder, the
    arm's option (and any `drop`ped option), plus the arm's value and its own results folder."""
    names = (COMPARE, COMPARE_POLICIES, "--results-dir", f"--{arm.flag}", *drop)
    actions = [parser._option_string_actions[name] for name in names]  # noqa: SLF001
    kept = without_options(argv, actions)
    compare_actions = actions[:2]
    if not any(_names(action, token) for action in compare_actions for token in argv):
        # The comparison came from a config file, which the arm reads too: blank it there.
        kept += [f"{COMPARE}=", f"{COMPARE_POLICIES}="]
    return [*kept, *arm.args, f"--results-dir={folder}"]


def exit_code_of_comparison(codes: Sequence[int], interrupted_by: int | None = None) -> int:
    """0 only when every arm's code is 0 and nothing interrupted the comparison; else the arms'
    codes (and the interrupt's 128+N) by the suite's precedence (metrics/verdict.py): 2, 6, 3,
    128+N, 5, then any other code an arm ended with, then 1 (some call failed)."""
    found = list(codes)
    if interrupted_by is not None:
        found.append(verdict.SIGNAL_EXIT_BASE + interrupted_by)
    if all(code == 0 for code in found):
        return 0
    for code in (verdict.START_UP_EXIT_CODE, verdict.RUN_BROKEN_EXIT_CODE, verdict.SLO_EXIT_CODE):
        if code in found:
            return code
    signals = [code for code in found if verdict.SIGNAL_EXIT_BASE < code <= verdict.SIGNAL_EXIT_BASE + 64]
    if signals:
        return signals[0]
    if verdict.NOTHING_MEASURED_EXIT_CODE in found:
        return verdict.NOTHING_MEASURED_EXIT_CODE
    others = [code for code in found if code not in (0, 1)]
    return others[0] if others else 1
