"""The contracts every room shares, at the bottom of the house: imports nothing of the suite.

- outcome: one Outcome per logical call, its columns and the error kinds;
- slo: the SLO language (gates, windows, one evaluator) used by gates, capacity search and reports;
- quantiles: the one percentile definition (nearest rank) every table uses;
- verdicts: the moderation verdict vocabulary that users produce and reports count;
- results: the results-folder layout (file names, columns, the typed run.json model) that
  metrics/ and lifecycle/ write and reports/ read;
- options: the one error type of a bad option, and OptionSpec for plug-in options;
- context: the one run context on the Locust environment, where each room keeps its per-run state.

The architecture contract (pyproject.toml, [tool.importlinter]) keeps this package at the bottom.
"""
