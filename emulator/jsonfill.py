"""JSON mode: a value that validates against the request's schema, deterministic per prompt.

Works for both `responseSchema` (the API's OpenAPI subset, types in capitals) and
`responseJsonSchema` (JSON Schema: $ref/$defs, anyOf/oneOf/allOf, const, type lists, ...).
Every free choice (which enum value, how many items, which words) comes from a random.Random
seeded with a hash of the prompt, so the same prompt gives the same JSON.

The moderation rule: the answer is generic, except for fields whose *name* says they carry a
verdict. These follow the categories the model answers (emulator.content passes what
emulator.moderation.judged decided: the prompt's unsafe markers, flipped on the posts the model's
modelled accuracy gets wrong) and its confidence:
- boolean named like flagged / violation / unsafe / harmful / toxic / blocked / is_violating
  -> true when the prompt has a marker; named like safe / allowed / acceptable / compliant -> false;
- enum (or string) named like verdict / label / decision / classification / rating / status
  -> a value that reads unsafe (unsafe, violation, flagged, block, reject, remove, harmful, yes...)
  when marked, else one that reads safe (safe, ok, allow, approve, pass, clean, benign, no...);
- enum or array of enums named like category / categories / harm_type / violations -> the values
  that name the marked categories (hate, harassment, sexual, dangerous, civic), or a none-like value;
- number named like score / severity / toxicity / probability -> high (0.9 of the range) when
  answered unsafe, low (0.05) when not; named like confidence / certainty -> the judgement's
  confidence (0..1) across the range: low on most wrong answers, high on most right ones.

Batches: when the prompt holds `<post id="ID">` blocks (emulator.moderation.posts_in), the first
array of objects with an id-like property (id, post_id, item_id) gets one element per block, in
order (at most maxItems), its id the block's and its verdict fields judged from that block alone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
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
_CONFIDENCE_NAME = re.compile(r"confiden|certain", re.I)
_ID_NAME = re.compile(r"^(post|item)?[-_]?id$", re.I)
SURE = 0.9  # the confidence when the caller gives none (function-call arguments)
# One block of a batch: its id, the categories the model answers for it, its confidence.
Post = tuple[str, Sequence[str], float]
_CATEGORY_WORDS = {
    "HARM_CATEGORY_HATE_SPEECH": re.compile(r"hate", re.I),
    "HARM_CATEGORY_HARASSMENT": re.compile(r"harass|bully", re.I),
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": re.compile(r"sex|explicit|adult", re.I),
    "HARM_CATEGORY_DANGEROUS_CONTENT": re.compile(r"danger|violen|weapon", re.I),
    "HARM_CATEGORY_CIVIC_INTEGRITY": re.compile(r"civic|election", re.I),
}
WORDS = ("alpha", "bravo", "steady", "signal", "review", "sample", "window", "answer", "detail", "value")


class _Filler:
    def __init__(
        self,
        rng: random.Random,
        categories: Sequence[str],
        root: dict[str, Any],
        confidence: float = SURE,
        posts: Sequence[Post] = (),
    ) -> None:
        self.rng = rng
        self.categories = categories  # HARM_CATEGORY_* the model answers; empty: safe
        self.confidence = confidence
        self.root = root
        self.posts = posts  # a batch's blocks, for the first array of id'd objects

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
        id_name = _id_property(resolved) if self.posts else None
        if id_name is not None:
            return self.batch(items, resolved, id_name, schema.get("maxItems"), depth)
        if _CATEGORY_NAME.search(name) and resolved.get("enum"):
            picked = self.category_values(list(resolved["enum"]))
            if low <= len(picked) <= high:
                return picked
        count = self.rng.randint(low, max(low, min(high, low + 3)))
        if depth >= 12:
            count = low
        return [self.fill(items, name.rstrip("s"), depth + 1) for _ in range(count)]

    def batch(self, items: Any, resolved: dict[str, Any], id_name: str, most: Any, depth: int) -> list[Any]:
        """One element per block, each filled from its own judgement; later arrays fill as usual."""
        posts, self.posts = self.posts, ()
        if most is not None:
            posts = posts[: int(most)]
        id_schema = resolved["properties"][id_name]
        id_schema = self.resolve(id_schema) if isinstance(id_schema, dict) else {}
        elements = []
        for post_id, categories, confidence in posts:
            element = _Filler(self.rng, categories, self.root, confidence).fill(items, "item", depth + 1)
            if isinstance(element, dict):
                element[id_name] = _id_value(post_id, id_schema)
            elements.append(element)
        return elements

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
        if _CONFIDENCE_NAME.search(name):
            fraction = self.confidence
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


def _id_property(schema: dict[str, Any]) -> str | None:
    """The id-like property of an object schema (id, post_id, item_id), if it has one."""
    if not isinstance(schema, dict):
        return None
    return next((name for name in schema.get("properties") or {} if _ID_NAME.match(name)), None)


def _id_value(post_id: str, schema: dict[str, Any]) -> Any:
    if _type_of(schema) == "integer" and post_id.strip().lstrip("-").isdigit():
        return int(post_id)
    return post_id


def fill_schema(
    schema: dict[str, Any],
    rng: random.Random,
    unsafe_categories: Sequence[str],
    confidence: float = SURE,
    posts: Sequence[Post] = (),
) -> Any:
    """A JSON value valid against `schema`; verdict-like fields follow `unsafe_categories` (the
    HARM_CATEGORY_* the model answers) and `confidence`, a batch's elements follow `posts`."""
    return _Filler(rng, unsafe_categories, schema, confidence, posts).fill(schema)


def enum_answer(schema: dict[str, Any], rng: random.Random, unsafe_categories: Sequence[str]) -> str:
    """text/x.enum mode: one of the schema's enum values, chosen like a verdict field."""
    values = list(schema.get("enum") or [])
    if not values:
        return ""
    return str(_Filler(rng, unsafe_categories, schema).pick_enum(values, "verdict"))


__all__ = ["fill_schema", "enum_answer"]
