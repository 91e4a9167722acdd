"""`python -m benchmarks NAME [options]`: run one benchmark's main(argv).

Add a benchmark by adding its module to BENCHMARKS; the module needs `main(argv) -> int`.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, str] = {
    "emulator": "benchmarks.emulator",
    "transports": "benchmarks.transports",
    "report": "benchmarks.report",
    "startup": "benchmarks.startup",
    "arrival": "benchmarks.arrival",
    "policies": "benchmarks.policies",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        if args and args[0] not in ("-h", "--help"):
            print(f"benchmarks: unknown benchmark {args[0]!r}; choose one of: {names}", file=sys.stderr)
            return 2
        print(f"usage: python -m benchmarks NAME [options]   (NAME: {names})")
        return 0 if args else 2
    try:
        module = importlib.import_module(BENCHMARKS[args[0]])
    except ModuleNotFoundError as exc:
        if exc.name != BENCHMARKS[args[0]]:
            raise
        print(
            f"benchmarks: {args[0]!r} is not available yet ({BENCHMARKS[args[0]]} is missing)",
            file=sys.stderr,
        )
        return 2
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
