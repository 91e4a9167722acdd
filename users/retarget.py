"""The same prepared call sent to another model: a tier's escalation or a circuit breaker's fallback.

A CallSpec carries its model, its caps and thinking options, and the encodings of all of them (made
once and shared by every user), so a call for a second model is a second spec, built once per (spec,
model) in the process and kept in the run context, never per call in the timed path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from users.call import CallSpec, with_request_bytes
from users.context_cache import without_cache
from users.state import settings_of, users_state


def spec_for_model(environment: Any, spec: CallSpec, model: str) -> CallSpec:
    """`spec` for `model`: its thinking option kept only where `model` takes it, its automatic output
    cap recomputed for that model's thinking headroom and output limit; cached per process."""
    if model == spec.model:
        return spec
    spec = without_cache(environment, spec)  # a cache belongs to one model
    cache = users_state(environment).retargeted
    key = (id(spec), model)
    found = cache.get(key)
    if found is not None and found[0] is spec:
        return found[1]
    settings = settings_of(environment)
    other = settings.for_model(model)
    answer_tokens = None
    if settings.max_output_tokens is None and spec.max_output_tokens is not None:
        # The answer length the spec was built for: its cap less this model's thinking headroom.
        answer_tokens = max(1, spec.max_output_tokens - settings.thinking_headroom())
    fields = other.call_fields(answer_tokens)
    retargeted = with_request_bytes(dataclasses.replace(spec, **fields))
    cache[key] = (spec, retargeted)  # the spec itself is kept, so its id cannot be reused
    return retargeted
