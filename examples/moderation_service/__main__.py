"""Run the moderation service: python -m examples.moderation_service [--port 8088] [--pool 4] ...

GEMINI_API_KEY (required) and GEMINI_BASE_URL (optional) come from the environment, as in a
deployed app; the flags override the rest. See examples/moderation_service/app.py for the knobs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from examples.moderation_service.app import Settings, log, make_app

DEFAULT_MODEL = "gemini-3.8-flash"  # core/models.json's default: current, and served by the emulator


def parse_settings(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m examples.moderation_service",
        description="A small moderation API over Gemini, with an adjustable bottleneck. "
        "Environment: GEMINI_API_KEY (required), GEMINI_BASE_URL (optional).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port to listen on (default 8088)")
    parser.add_argument(
        "--pool", type=int, default=4, help="requests handled at once; the rest wait in the app (default 4)"
    )
    parser.add_argument(
        "--preprocess-ms",
        type=float,
        default=20.0,
        help="blocking pre-processing per request, on a thread pool of --pool threads (default 20)",
    )
    parser.add_argument(
        "--preprocess-on-loop",
        action="store_true",
        help="run the pre-processing on the event loop instead, blocking every request (the classic mistake)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"Gemini model (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--thinking-level",
        type=str.upper,
        choices=["MINIMAL", "LOW", "MEDIUM", "HIGH"],
        default="LOW",
        # A yes/no verdict needs little thought: at the model's own (MEDIUM) a call takes ~3.5 s.
        help="how much the model thinks (default LOW)",
    )
    parser.add_argument(
        "--model-timeout-s",
        type=float,
        default=30.0,
        help="give up on the model after this (504; default 30)",
    )
    parser.add_argument(
        "--base-url", default=environ.get("GEMINI_BASE_URL") or None, help="Gemini API URL (GEMINI_BASE_URL)"
    )
    parser.add_argument(
        "--request-id-header",
        default="x-request-id",
        help="incoming header whose id is forwarded to the model as x-request-id (default x-request-id)",
    )
    args = parser.parse_args(argv)
    api_key = environ.get("GEMINI_API_KEY", "").strip()
    if not api_key:
        parser.error("GEMINI_API_KEY is not set: export your Gemini API key (the suite's emulator takes any)")
    if args.pool < 1:
        parser.error("--pool must be at least 1")
    if args.preprocess_ms < 0 or args.model_timeout_s <= 0:
        parser.error("--preprocess-ms must be 0 or more, --model-timeout-s more than 0")
    return Settings(
        api_key=api_key,
        base_url=args.base_url,
        model=args.model,
        thinking_level=args.thinking_level,
        model_timeout_s=args.model_timeout_s,
        pool=args.pool,
        preprocess_ms=args.preprocess_ms,
        preprocess_on_loop=args.preprocess_on_loop,
        request_id_header=args.request_id_header,
        host=args.host,
        port=args.port,
    )


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    where = f"http://{settings.host}:{settings.port}"
    line = f"listening on {where}, pool {settings.pool}, model {settings.model}, Gemini at "
    line += settings.base_url or "the Gemini API"  # never the key

    # run_app calls `print` once its socket is listening: the one start line, when it is true.
    # SIGINT and SIGTERM end it gracefully (exit code 0): in-flight requests get up to 2 s (well
    # inside the 5 s the suite waits before SIGKILL), then cleanup closes the Gemini client and
    # the worker threads.
    web.run_app(
        make_app(settings),
        host=settings.host,
        port=settings.port,
        print=lambda *_: log.info(line),
        access_log=None,  # one line per request would swamp a load test's logs
        shutdown_timeout=2.0,
        backlog=1024,  # waiting belongs in the app's queue, not in dropped connections
    )


if __name__ == "__main__":
    sys.exit(main())
