"""CLI: `python -m reports DIR` builds DIR/report.html; `python -m reports compare BASE CANDIDATE`;
`python -m reports arms DIR1 DIR2 ... -o OUT` compares the arms of a --compare run."""

from __future__ import annotations

import argparse
import os
import sys

from reports.loading import ReportInputError

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2


def _build(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Build RESULTS_DIR/report.html from a results folder (Locust CSVs, request logs, run.json).",
        epilog="Subcommands: `python -m reports compare BASE CANDIDATE [--fail-on-regression]` (see "
        "`compare --help`); `python -m reports arms DIR1 DIR2 ... -o OUT` (see `arms --help`). Exit codes: 0 report built (or no regression), 1 unexpected failure, 2 bad input, "
        "4 regression found by compare with --fail-on-regression.",
    )
    parser.add_argument(
        "results_dir",
        metavar="RESULTS_DIR",
        help="a results/<run-id>/ folder, or any folder of Locust CSVs (`locust --csv DIR/NAME`)",
    )
    parser.add_argument(
        "--prefix",
        metavar="NAME",
        default=None,
        help="which Locust run to report when the folder holds several: the NAME of NAME_stats.csv",
    )
    args = parser.parse_args(argv)
    from reports.builder import write_report
    from reports.loading import load_results

    data = load_results(args.results_dir, prefix=args.prefix)
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(write_report(data))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "compare":
            from reports.compare import main as compare_main

            return compare_main(argv[1:])
        if argv and argv[0] == "arms":
            from reports.arms import main as arms_main

            return arms_main(argv[1:])
        return _build(argv)
    except ReportInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # e.g. the folder is read-only: the report cannot be written
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        # A bug or data no check foresaw: one line for the user, the traceback only on request.
        if os.environ.get("REPORTS_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"error: unexpected {type(error).__name__}: {message} (set REPORTS_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
