"""The defaults of every option a run records in run.json, so the report can show the options the
user set apart from the ones left alone (run.json records values, not where they came from).

Kept in step with the real parsers by tests/reports/test_reports_metadata.py, which builds Locust's
parser with the locustfile's options and compares every default: a new option or a changed default
fails that test until it is listed here. An option not listed (a plugin's own) counts as set.
"""

from __future__ import annotations

from typing import Any

# Locust's own options (locust.argument_parser), with the suite's overrides of web_host and
# master_bind_host (the locustfile binds to loopback unless told otherwise).
LOCUST_DEFAULTS: dict[str, Any] = {
    "locustfile": "locustfile.py",
    "config": None,
    "host": None,
    "num_users": None,
    "spawn_rate": None,
    "run_time": None,
    "list_commands": False,
    "config_users": None,
    "web_host": "127.0.0.1",
    "web_host_display_name": None,
    "web_port": 8089,
    "headless": False,
    "autostart": False,
    "autoquit": -1,
    "headful": False,
    "web_auth": None,
    "web_login": False,
    "tls_cert": "",
    "tls_key": "",
    "class_picker": False,
    "build_path": "",
    "legacy_ui": False,
    "master": False,
    "master_bind_host": "127.0.0.1",
    "master_bind_port": 5557,
    "expect_workers": 1,
    "expect_workers_max_wait": 0,
    "enable_rebalancing": False,
    "expect_slaves": None,
    "worker": False,
    "processes": None,
    "slave": None,
    "master_host": "127.0.0.1",
    "master_port": 5557,
    "web_base_path": "",
    "tags": None,
    "exclude_tags": None,
    "csv_prefix": None,
    "stats_history_enabled": False,
    "print_stats": False,
    "only_summary": False,
    "reset_stats": False,
    "html_file": None,
    "json": False,
    "json_file": None,
    "skip_log_setup": False,
    "loglevel": "INFO",
    "logfile": None,
    "show_task_ratio": False,
    "show_task_ratio_json": False,
    "exit_code_on_error": 1,
    "stop_timeout": "0",
    "equal_weights": False,
    "profile": None,
    "otel": False,
    "user_classes": [],
}

# The suite's options (locustfile.py's init_command_line_parser listener).
SUITE_DEFAULTS: dict[str, Any] = {
    "model": "gemini-3.8-flash",
    "transport": "genai",
    "api_key": "",
    "max_output_tokens": 0,
    "temperature": 0.0,
    "thinking_budget": -1,
    "thinking_level": "",
    "timeout": 60.0,
    "retries": 0,
    "pricing": "",
    "prompt_size": "mixed",
    "image_mode": "optimized",
    "max_image_side": 2048,
    "inline_limit_mb": 100.0,
    "image_set": "small",
    "images_dir": "",
    "prompts_file": "",
    "posts_file": "",
    "mix": "",
    "policy_file": "",
    "media_resolution": "",
    "image_transport": "inline",
    "shape": "none",
    "peak_users": "",
    "ramp_up": "",
    "hold": "0s",
    "ramp_down": "0s",
    "stage_classes": "",
    "step_users": "",
    "step_duration": "",
    "steps": "",
    "base_users": "",
    "spike_users": "",
    "spike_at": "",
    "spike_duration": "",
    "recovery": "",
    "soak_users": "",
    "warm_up": "0s",
    "rate": "",
    "max_users": "100",
    "start_rate": "",
    "rate_step": "",
    "max_cost": 0.0,
    "slo": "",
    "results_dir": "",
    "emulator_profile": "",
    "emulator_config": "",
    "emulator_seed": "",
}

# Values the suite fills in itself, never typed by the user.
SET_BY_THE_SUITE = frozenset({"emulator_url"})


def is_default(name: str, value: Any) -> bool:
    """Whether an option's recorded value is its default. run.json holds parsed values, so "0" and
    0, or [] and "[]" (a list written as its repr), are the same default."""
    if name in SET_BY_THE_SUITE:
        return True
    if name in LOCUST_DEFAULTS:
        default = LOCUST_DEFAULTS[name]
    elif name in SUITE_DEFAULTS:
        default = SUITE_DEFAULTS[name]
    else:
        return False
    return value == default or str(value) == str(default)
