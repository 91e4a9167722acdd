"""The image pre-processing pipeline: what an app should do before it sends a photo inline.

optimized: decode, flatten transparency onto white and convert to RGB, shrink so the longer side is
at most `max_side` (default 2048) with LANCZOS, keeping the aspect ratio and never enlarging, and
encode as JPEG at quality 85 with optimize=True. raw: the file's bytes as they are.

Both are checked against the inline request limit before a run starts, so a too-large image is one
clear error, not a stream of 400s. INLINE_LIMIT_BYTES is the real API's inline request limit, 100 MB
since 2026-01-12 (20 MB before; see gemini-wire.md), which the bundled emulator enforces too: lower
it with --inline-limit-mb 20 to check what an app on the old limit could send.

Preparation runs once per image and process (memoised), in real OS threads (Pillow releases the GIL
while it decodes, resizes and encodes), never inside a timed call or a user's task. Its result is
also cached on disk by the source's content hash, the size limit and the JPEG quality
(<cache root>/prepared/v<PIPELINE_VERSION>, see fixtures.images.cache_root), so the next start with
the same images and options reads a few small JPEGs instead of decoding 8K photos again. The CPU
time of the pipeline is measured per image with thread_time() when it really runs, kept beside the
cached JPEG, and carried on every Outcome as prep_ms: what an app pays per image, cached or not.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from fixtures.images import SourceImage, cache_root
from fixtures.loading import FixtureError

logger = logging.getLogger(__name__)
PIPELINE_VERSION = 1  # raise when optimize_image changes its output: old cache entries are then ignored

MAX_SIDE_DEFAULT = 2048
JPEG_QUALITY = 85
INLINE_LIMIT_BYTES = 100 * 1024 * 1024
IMAGE_MODES = ("raw", "optimized")
PREP_THREADS = 4
PROGRESS_AFTER_S = 1.0
T = TypeVar("T")


class ImageLimitError(ValueError):
    """An image that cannot be sent inline; the message names it and says what to change."""


@dataclass(frozen=True, slots=True)
class PreparedImage:
    name: str
    mode: str  # raw | optimized
    mime_type: str
    data: bytes
    width: int
    height: int
    source_bytes: int
    prep_ms: float  # CPU time this process spent preparing it (0 for raw: nothing to do)


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that keeps the aspect ratio with the longer side at most max_side; never larger."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (a plain convert would turn it black)."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def optimize_image(
    data: bytes, *, max_side: int = MAX_SIDE_DEFAULT, quality: int = JPEG_QUALITY
) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of `data` after the pipeline."""
    with Image.open(io.BytesIO(data)) as source:
        source.load()
        image = to_rgb(source)
        size = fit_within(image.width, image.height, max_side)
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        return out.getvalue(), size[0], size[1]


def check_inline_limit(name: str, mode: str, request_bytes: int, limit: int) -> None:
    if request_bytes <= limit:
        return
    advice = (
        "lower --max-image-side"
        if mode == "optimized"
        else "use --image-mode optimized, or a smaller image in --images-dir"
    )
    raise ImageLimitError(
        f"image {name} ({mode}): the request carrying it inline is {request_bytes:,} bytes, over the "
        f"inline limit of {limit:,} bytes (--inline-limit-mb {limit / 1024 / 1024:.3g}); {advice}"
    )


_memo: dict[tuple[str, str, int], PreparedImage] = {}
_memo_lock = threading.Lock()


def prepared_cache_dir() -> Path:
    return cache_root() / "prepared" / f"v{PIPELINE_VERSION}"


def _cache_paths(digest: str, max_side: int) -> tuple[Path, Path]:
    stem = prepared_cache_dir() / f"{digest}-side{max_side}-q{JPEG_QUALITY}"
    return stem.with_suffix(".jpg"), stem.with_suffix(".json")


def _from_disk(source: SourceImage, digest: str, max_side: int) -> PreparedImage | None:
    """The cached result, or None when it is missing or does not hold together (then it is rebuilt)."""
    image_path, meta_path = _cache_paths(digest, max_side)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        data = image_path.read_bytes()
        if len(data) != meta["bytes"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            return None
        return PreparedImage(
            source.name,
            "optimized",
            "image/jpeg",
            data,
            int(meta["width"]),
            int(meta["height"]),
            len(source.data),
            float(meta["prep_ms"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _to_disk(prepared: PreparedImage, digest: str, max_side: int) -> None:
    """Best effort: a cache that cannot be written only costs the next start its preparation."""
    image_path, meta_path = _cache_paths(digest, max_side)
    meta = {
        "bytes": len(prepared.data),
        "sha256": hashlib.sha256(prepared.data).hexdigest(),
        "width": prepared.width,
        "height": prepared.height,
        "prep_ms": prepared.prep_ms,
    }
    try:
        image_path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a parallel process (--processes N) never reads half a file.
        for path, payload in ((image_path, prepared.data), (meta_path, json.dumps(meta).encode())):
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(payload)
            os.replace(temporary, path)
    except OSError as exc:
        logger.debug("prepared image not cached in %s: %s", image_path.parent, exc)


def prepare(source: SourceImage, mode: str, *, max_side: int = MAX_SIDE_DEFAULT) -> PreparedImage:
    """One image in one mode. Optimized results are memoised per (name, content, max side) in this
    process and cached on disk by content across processes and runs."""
    if mode == "raw":
        return PreparedImage(
            source.name,
            "raw",
            source.mime_type,
            source.data,
            source.width,
            source.height,
            len(source.data),
            0.0,
        )
    if mode != "optimized":
        raise ValueError(f"image mode {mode!r} is not one of {', '.join(IMAGE_MODES)}")
    digest = hashlib.sha256(source.data).hexdigest()
    key = (source.name, digest, max_side)
    with _memo_lock:
        cached = _memo.get(key)
    if cached is not None:
        return cached
    prepared = _from_disk(source, digest, max_side)
    if prepared is None:
        started = time.thread_time()
        try:
            data, width, height = optimize_image(source.data, max_side=max_side)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            # fixtures.images decodes a user's files before they get here; this keeps any image
            # Pillow still cannot decode one line naming the file (not a traceback, not a BytesIO).
            raise FixtureError(
                f"{source.path}: not a readable image ({type(exc).__name__}: {exc}); re-save it or "
                "remove it from --images-dir"
            ) from None
        prep_ms = (time.thread_time() - started) * 1000.0
        prepared = PreparedImage(
            source.name, "optimized", "image/jpeg", data, width, height, len(source.data), prep_ms
        )
        _to_disk(prepared, digest, max_side)
    with _memo_lock:
        _memo[key] = prepared
    return prepared


def _captured(function: Callable[..., T], *args: Any) -> tuple[bool, Any]:
    # gevent's thread pool prints the traceback of a task that raises before handing the error back;
    # caught here, the caller re-raises it and decides how it is reported (one line for bad input).
    try:
        return True, function(*args)
    except Exception as exc:  # noqa: BLE001 - re-raised in the calling greenlet
        return False, exc


def _unwrap(result: tuple[bool, Any]) -> Any:
    ok, value = result
    if not ok:
        raise value
    return value


def outside_loop(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (drawing, decoding) in a real OS thread; the calling greenlet waits while
    the gevent hub keeps serving everything else."""
    import gevent

    return _unwrap(gevent.get_hub().threadpool.apply(_captured, (function, *args)))


def prepare_all(
    sources: Sequence[SourceImage], modes: Sequence[str], *, max_side: int = MAX_SIDE_DEFAULT
) -> list[PreparedImage]:
    """Every (image, mode), in source order, prepared in a pool of real OS threads.

    gevent's thread pool runs the work outside the event loop: a calling greenlet waits without
    stalling the hub (the web UI stays responsive). Outside gevent this is a plain thread pool.
    Once it has taken more than PROGRESS_AFTER_S, each finished image is logged, so a first start
    on a slow machine shows it is moving.
    """
    jobs = [(source, mode) for source in sources for mode in modes]
    if not any(mode == "optimized" for _, mode in jobs):
        return [prepare(source, mode, max_side=max_side) for source, mode in jobs]
    from gevent.threadpool import ThreadPool

    started = time.monotonic()
    pool = ThreadPool(min(PREP_THREADS, len(jobs)))
    done: list[PreparedImage] = []
    try:
        for result in pool.imap(
            lambda job: _captured(functools.partial(prepare, max_side=max_side), *job), jobs
        ):
            image = _unwrap(result)
            done.append(image)
            if time.monotonic() - started > PROGRESS_AFTER_S:
                logger.info(
                    "preparing images: %d of %d done (%s, %s)", len(done), len(jobs), image.name, image.mode
                )
        return done
    finally:
        pool.kill()
