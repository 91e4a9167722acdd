"""JSON mode: a value that validates against the request's schema, deterministic per prompt.

Works for both `responseSchema` (the API's OpenAPI subset, types in capitals) and
`responseJsonSchema` (JSON Schema: $ref/$defs, anyOf/oneOf/allOf, const, type lists, ...).
Every free choice (which enum value, how many items, which words) comes from a random.Random
seeded with a hash of the prompt, so the same prompt gives the same JSON.

The moderation rule: the answer is generic, except for fields whose *name* says they carry a
verdict. These are derived from the prompt's unsafe markers (emulator.moderation), so a labelled
fixture set gets the expected answers:
- boolean named like flagged / violation / unsafe / harmful / toxic / blocked / is_violating
  -> true when the prompt has a marker; named like safe / allowed / acceptable / compliant -> false;
- enum (or string) named like verdict / label / decision / classification / rating / status
  -> a value that reads unsafe (unsafe, violation, flagged, block, reject, remove, harmful, yes...)
  when marked, else one that reads safe (safe, ok, allow, approve, pass, clean, benign, no...);
- enum or array of enums named like category / categories / harm_type / violations -> the values
  that name the marked categories (hate, harassment, sexual, dangerous, civic), or a none-like value;
- number named like score / severity / toxicity / probability / confidence -> high (0.9 of the
  range) when marked, low (0.05) when not; confidence is always high.
"""

from __future__ import annotations

import random
import re
from typing import Any

_UNSAFE_WORDS = re.compile(
    r"unsafe|violat|flag|block|reject|remov|harm|toxic|deny|denied|abus|bad|^yes$|^true$", re.I
)
_SAFE_WORDS = re.compile(
    r"^safe|^ok|allow|approv|pass|clean|benign|accept|complian|^no$|^false$|none|neutral", re.I
)
# "no_violation", "not_flagged", "none": words of the unsafe family, negated.
_NEGATED = re.compile(r"^(no|not|non)([-_ ]|$)|none|^safe", re.I)
_BOOL_UNSAFE = re.compile(r"flag|violat|unsafe|harm|toxic|block|reject|abus|offensive", re.I)
_BOOL_SAFE = re.compile(r"safe|allow|accept|complian|appropriate|^ok$|^is_ok$", re.I)
_VERDICT_NAME = re.compile(r"verdict|label|decision|classif|rating|status|result|moderation|outcome", re.I)
_CATEGORY_NAME = re.compile(r"categor|harm_?type|violations?$|reasons?$|policy|policies", re.I)
_SCORE_NAME = re.compile(r"score|severity|toxicity|probability|risk", re.I)
_CATEGORY_WORDS = {
    "HARM_CATEGORY_HATE_SPEECH": re.compile(r"hate", re.I),
    "HARM_CATEGORY_HARASSMENT": re.compile(r"harass|bully", re.I),
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": re.compile(r"sex|explicit|adult", re.I),
    "HARM_CATEGORY_DANGEROUS_CONTENT": re.compile(r"danger|violen|weapon", re.I),
    "HARM_CATEGORY_CIVIC_INTEGRITY": re.compile(r"civic|election", re.I),
}
WORDS = ("alpha", "bravo", "steady", "signal", "review", "sample", "window", "answer", "detail", "value")


class _Filler:
    def __init__(self, rng: random.Random, categories: list[str], root: dict[str, Any]) -> None:
        self.rng = rng
        self.categories = categories  # HARM_CATEGORY_* found in the prompt; empty: safe
        self.root = root

    @property
    def unsafe(self) -> bool:
        return bool(self.categories)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            ref = schema["$ref"]
            target: Any = self.root
            if ref.startswith("#"):
                for piece in [p for p in ref[1:].split("/") if p]:
                    target = (
                        target.get(piece.replace("~1", "/").replace("~0", "~"), {})
                        if isinstance(target, dict)
                        else {}
                    )
            else:
                target = {}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                for key, value in part.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = sorted(set(merged.get("required", [])) | set(value))
                    else:
                        merged.setdefault(key, value)
            schema = merged
        return schema

    def fill(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if schema is True or not isinstance(schema, dict):
            return self.text(name)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and schema["enum"]:
            return self.pick_enum(list(schema["enum"]), name)
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [self.resolve(o) for o in schema[key]]
                non_null = [o for o in options if _type_of(o) != "null"] or options
                return self.fill(non_null[0], name, depth)
        kind = _type_of(schema)
        if kind == "object" or (kind is None and "properties" in schema):
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "boolean":
            return self.boolean(name)
        if kind in ("integer", "number"):
            return self.number(schema, name, kind == "integer")
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        order = list(schema.get("propertyOrdering") or []) + [
            p for p in properties if p not in (schema.get("propertyOrdering") or [])
        ]
        out: dict[str, Any] = {}
        for prop in order:
            if prop in properties and depth < 12:
                out[prop] = self.fill(properties[prop], prop, depth + 1)
        return out

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        items = schema.get("items") or {}
        low = int(schema.get("minItems", 0) or 0)
        high = int(schema.get("maxItems", max(low, 3)) or max(low, 3))
        resolved = self.resolve(items) if isinstance(items, dict) else {}
        if _CATEGORY_NAME.search(name) and resolved.get("enum"):
            picked = self.category_values(list(resolved["enum"]))
            if low <= len(picked) <= high:
                return picked
        count = self.rng.randint(low, max(low, min(high, low + 3)))
        if depth >= 12:
            count = low
        return [self.fill(items, name.rstrip("s"), depth + 1) for _ in range(count)]

    def boolean(self, name: str) -> bool:
        if _BOOL_UNSAFE.search(name):
            return self.unsafe
        if _BOOL_SAFE.search(name):
            return not self.unsafe
        return self.rng.random() < 0.5

    def number(self, schema: dict[str, Any], name: str, integer: bool) -> float | int:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1 if not integer else 100))
        low, high = float(low), float(high)
        if high < low:
            high = low
        if re.search("confidence", name, re.I):
            fraction = 0.9
        elif _SCORE_NAME.search(name):
            fraction = 0.9 if self.unsafe else 0.05
        else:
            fraction = self.rng.random()
        value = low + (high - low) * fraction
        if integer:
            value = round(value)
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                value = int(schema["exclusiveMinimum"]) + 1
            if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
                value = int(schema["exclusiveMaximum"]) - 1
            return int(value)
        value = round(value, 3)
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            value = (low + high) / 2
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            value = (low + high) / 2
        return value

    def string(self, schema: dict[str, Any], name: str) -> str:
        fmt = (schema.get("format") or "").lower()
        if fmt == "date-time":
            return f"2026-01-15T10:{self.rng.randint(0, 59):02d}:00Z"
        if fmt == "date":
            return f"2026-01-{self.rng.randint(1, 28):02d}"
        if fmt == "time":
            return f"10:{self.rng.randint(0, 59):02d}:00"
        if fmt == "email":
            return f"{self.rng.choice(WORDS)}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self.rng.choice(WORDS)}"
        if fmt == "uuid":
            return f"{self.rng.getrandbits(32):08x}-0000-4000-8000-{self.rng.getrandbits(48):012x}"
        if _VERDICT_NAME.search(name):
            text = "unsafe" if self.unsafe else "safe"
        elif _CATEGORY_NAME.search(name):
            text = ", ".join(_short(c) for c in self.categories) or "none"
        else:
            text = self.text(name)
        low = int(schema.get("minLength", 0) or 0)
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + self.rng.choice(WORDS)
        if high is not None:
            text = text[: int(high)]
        return text

    def text(self, name: str) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(2, 6)))

    def pick_enum(self, values: list[Any], name: str) -> Any:
        if _CATEGORY_NAME.search(name):
            picked = self.category_values(values)
            return picked[0]
        if _VERDICT_NAME.search(name) or any(_UNSAFE_WORDS.search(str(v)) for v in values):
            unsafe_values = [
                v for v in values if _UNSAFE_WORDS.search(str(v)) and not _NEGATED.search(str(v))
            ]
            if self.unsafe and unsafe_values:
                return unsafe_values[0]
            safe_values = [
                v
                for v in values
                if (_SAFE_WORDS.search(str(v)) or _NEGATED.search(str(v))) and v not in unsafe_values
            ]
            if not self.unsafe and safe_values:
                return safe_values[0]
        return values[self.rng.randrange(len(values))]

    def category_values(self, values: list[Any]) -> list[Any]:
        picked = []
        for category in self.categories:
            pattern = _CATEGORY_WORDS[category]
            picked.extend(v for v in values if pattern.search(str(v)) and v not in picked)
        if picked:
            return picked
        return [v for v in values if _SAFE_WORDS.search(str(v))][:1] or [values[0]]


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if str(k).lower() != "null"]
        kind = non_null[0] if non_null else "null"
    return str(kind).lower() if kind else None


def _short(category: str) -> str:
    return category.removeprefix("HARM_CATEGORY_").lower()


def fill_schema(schema: dict[str, Any], rng: random.Random, unsafe_categories: list[str]) -> Any:
    """A JSON value valid against `schema`; verdict-like fields follow `unsafe_categories`."""
    return _Filler(rng, unsafe_categories, schema).fill(schema)


def enum_answer(schema: dict[str, Any], rng: random.Random, unsafe_categories: list[str]) -> str:
    """text/x.enum mode: one of the schema's enum values, chosen like a verdict field."""
    values = list(schema.get("enum") or [])
    if not values:
        return ""
    return str(_Filler(rng, unsafe_categories, schema).pick_enum(values, "verdict"))


__all__ = ["fill_schema", "enum_answer"]
