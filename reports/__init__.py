"""Post-processing of one results folder into a self-contained report.html (pandas, matplotlib, Jinja).

Public API: build_report(results_dir) -> Path, ReportInputError. CLI: `python -m reports --help`.
"""

from reports.builder import build_report
from reports.loading import ReportInputError

__all__ = ["ReportInputError", "build_report"]
