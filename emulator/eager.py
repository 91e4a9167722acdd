"""Run a coroutine at once, up to its first wait, and give it a task only if it waits.

Why: emulator.fastpath starts a request inside data_received; with no latency to play (the `fast`
profile of benchmarks) most requests never wait, and a task per request (its creation, a loop
turn, the callbacks) cost as much as answering one from the cache.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any


def start_eagerly(
    coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Future[Any] | None:
    """Run `coro` now, up to its first wait: None when it finished without one (its own error
    raised), else the task that carries it on."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
    # 3.11 has no eager tasks: step the coroutine by hand. Nothing it runs asks for its current
    # task before a wait (Slots' wait_for does not on 3.11; asyncio.timeout would).
    try:
        waited = coro.send(None)
    except StopIteration:
        return None
    return loop.create_task(_carry_on(coro, waited))


async def _carry_on(coro: Coroutine[Any, Any, None], waited: Any) -> None:
    """Go on with a coroutine stepped by hand up to its first wait, as a task would: await what it
    waits for, then resume it (it reads the future's result or error itself); a cancellation of
    this task reaches it as one."""
    while True:
        error: BaseException | None = None
        try:
            if waited is None:
                await asyncio.sleep(0)  # a bare yield: it lets others run
            else:
                # The coroutine's own await marked it as waited on, for the task that would have
                # taken it; we take it instead, so that mark must go (what Task does) or awaiting
                # it here fails.
                waited._asyncio_future_blocking = False
                await waited
        except asyncio.CancelledError as cancelled:
            if waited is None or not waited.cancelled():
                error = cancelled
        except Exception:  # the coroutine takes the future's own error from it
            pass
        try:
            waited = coro.send(None) if error is None else coro.throw(error)
        except StopIteration:
            return
