"""The frames of a shard made ready for the network, on a thread ahead of it.

:func:`file_records` turns one input file into rows (:class:`FrameRecord`): it reads the file
(:func:`oath.archive.themis.read_frames`), converts each frame as
:func:`oath.archive.themis.prepare_images` does (crop and scaling by
:func:`oath.archive.conversion.frame_to_oath`), and turns the frames of each site by its angle
through the same ImageMagick ``-distort SRT`` as :func:`oath.imaging.rotate.rotate_image`, here
as its exact sparse linear map (:mod:`oath.imaging.rotation_map`, one per angle and frame size,
checked against Wand on the first frame; :class:`Rotator`): all the frames of a file in one
sparse product. The pixels are those of the PNG the PNG path writes; no PNG is encoded or
decoded per frame.

:class:`ReadAhead` runs :func:`file_records` file after file on a thread, a bounded amount
ahead of whoever takes the rows (:class:`oath.archive.stream.StreamingExtractor`'s generator,
which then only hands pixels to TensorFlow); :func:`iter_frames` is the same as a generator.

A file that cannot be read (truncated, corrupt, another type) becomes one row with status
``failed: <reason>``; a frame that cannot be converted or rotated becomes a failed row of its
own, and the file's other frames go on.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oath.archive.conversion import Conversion
from oath.archive.frames import parse_archive_name
from oath.archive.keogram import keogram_column
from oath.archive.themis import STATUS_OK, ThemisError, input_kind, name_stem, read_frames
from oath.imaging.rotate import import_wand
from oath.imaging.rotation_map import (
    RotationMap,
    RotationMapError,
    differing_pixels,
    load_rotation_map,
    wand_rotate,
)

log = logging.getLogger(__name__)

#: Pixels the read-ahead thread may hold ready, in bytes: about 1,000 frames of 256 x 256 (a
#: site-hour holds ~1,200), so most of a job's frames can be ready before the network is.
READ_AHEAD_BYTES = 64 * 2**20


@dataclasses.dataclass
class FrameRecord:
    """One row of the output: a frame (``image``: its uint8 pixels until fed, unless kept; or
    ``png``: its PNG bytes) or a failure."""

    file: str
    frame: int | None
    timestamp: dt.datetime | None
    site: str
    status: str
    png: bytes | None = None
    image: np.ndarray | None = None
    keogram: np.ndarray | None = None  # the raw frame's N-S slice (oath.archive.keogram), counts

    @property
    def name(self) -> str:
        """The frame's PNG name, as the PNG path has it: ``<stem>_fNN.png`` or ``<stem>.png``."""
        suffix = "" if input_kind(self.file) == "image" else f"_f{self.frame:02d}"
        return f"{name_stem(self.file)}{suffix}.png"


class Rotator:
    """Rotation of uint8 frames by a site's angle: its exact linear map, else Wand.

    One map per (angle, frame size), loaded or built on first use; the first frame of each is
    also rotated by Wand, and a map that differs (or cannot be built) is dropped for Wand.
    A batch of frames goes through the map as one sparse product, through Wand frame by frame.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._maps: dict[tuple[float, tuple[int, int]], RotationMap | None] = {}
        self._wand_error = import_wand().WandException

    def rotate(self, grays: Sequence[np.ndarray], angle: float) -> list[np.ndarray | Exception]:
        """``grays`` (uint8, one size) rotated by ``angle``; a frame that cannot be rotated gets
        its exception instead, and the others are rotated."""
        if not grays:
            return []
        key = (float(angle), (int(grays[0].shape[0]), int(grays[0].shape[1])))
        if key not in self._maps:
            try:
                self._maps[key] = self._checked_map(grays[0], *key)
            except (self._wand_error, ValueError) as exc:  # Wand failed on that frame
                return [exc, *self.rotate(grays[1:], angle)]
        rotation = self._maps[key]
        if rotation is not None:
            try:
                return list(rotation.rotate(np.stack(grays)))
            except ValueError:
                pass  # a frame the batch cannot take: one by one, so that it fails alone
        return [self._rotate_one(gray, rotation, angle) for gray in grays]

    def _rotate_one(
        self, gray: np.ndarray, rotation: RotationMap | None, angle: float
    ) -> np.ndarray | Exception:
        try:
            return rotation.rotate(gray) if rotation is not None else wand_rotate(gray, angle)
        except (self._wand_error, ValueError) as exc:
            return exc

    def _checked_map(
        self, gray: np.ndarray, angle: float, shape: tuple[int, int]
    ) -> RotationMap | None:
        try:
            rotation = load_rotation_map(shape, angle, self.cache_dir)
        except RotationMapError as exc:
            log.warning("rotating %s frames by %s degrees through Wand: %s", shape, angle, exc)
            return None
        bad = differing_pixels(rotation, gray)
        if bad:
            log.warning(
                "the rotation map of %s frames at %s degrees differs from Wand in %d pixel(s) "
                "of a frame: rotating them through Wand",
                shape,
                angle,
                bad,
            )
            return None
        return rotation


def _failed(path: str, reason: str, frame: Any = None) -> FrameRecord:
    """A failed row; a whole failed file gets its site from its archive name, if any."""
    if frame is None:
        log.warning("%s: failed: %s", path, reason)
        return FrameRecord(path, None, None, parse_archive_name(path)[1] or "", f"failed: {reason}")
    return _failed_frame(
        FrameRecord(path, frame.index, frame.timestamp, frame.site or "", ""), reason
    )


def _failed_frame(record: FrameRecord, reason: str) -> FrameRecord:
    """``record``'s frame as a failed row (no pixels, no keogram)."""
    log.warning("%s frame %s: failed: %s", record.file, record.frame, reason)
    return FrameRecord(
        record.file, record.frame, record.timestamp, record.site, f"failed: {reason}"
    )


def file_records(path: str, conversion: Conversion, rotator: Rotator) -> list[FrameRecord]:
    """The rows of one input file: its frames as uint8 pixels ready for the network, or one
    failed row for a file that cannot be read.

    Each frame is converted alone (one that cannot be is a failed row, the others go on); then
    the frames of each (angle, size) are rotated together, as one sparse product.
    """
    try:
        frames = read_frames(path)
    except ThemisError as exc:
        return [_failed(path, str(exc).removeprefix(f"{path}: "))]
    except Exception as exc:  # the reader or ImageMagick on a damaged file
        return [_failed(path, f"{type(exc).__name__}: {exc}")]
    raw = input_kind(path) != "image"  # raw counts (stream0 or L1 CDF) become OATH-like
    records: list[FrameRecord] = []
    turns: dict[tuple[float, tuple[int, ...]], list[int]] = {}
    for frame in frames:
        site = frame.site or ""
        try:
            gray = conversion.to_gray(frame.image, site) if raw else frame.image
            gray = np.ascontiguousarray(gray, dtype=np.uint8)
        except (ThemisError, ValueError) as exc:
            records.append(_failed(path, str(exc), frame))
            continue
        angle = conversion.site_angles.get(site, 0.0) if raw else 0.0
        if angle:
            turns.setdefault((float(angle), gray.shape), []).append(len(records))
        keogram = keogram_column(frame.image)  # same read: no second pass over the archive
        records.append(
            FrameRecord(
                path, frame.index, frame.timestamp, site, STATUS_OK, image=gray, keogram=keogram
            )
        )
    for (angle, _), rows in turns.items():
        turned = rotator.rotate([records[k].image for k in rows], angle)
        for k, image in zip(rows, turned, strict=True):
            if isinstance(image, Exception):
                records[k] = _failed_frame(records[k], str(image))
            else:
                records[k].image = image
    return records


def _pixel_bytes(record: FrameRecord) -> int:
    return record.image.nbytes if record.image is not None else 0


class ReadAhead:
    """The rows of ``files`` (:func:`file_records`), prepared on a thread ahead of their use.

    The thread starts at once and reads, converts and rotates file after file: zlib, numpy and
    scipy's sparse product release the GIL, so it runs beside the network and while the
    network is built (not beside TensorFlow's import, which holds the GIL: the thread would
    slow it and get little done), and iterating only hands over ready rows, in file order. At
    most ``limit_bytes`` of pixels wait (plus one file's). An error other than a file's or a
    frame's (those are failed rows) is raised where the rows are taken, after the rows made
    before it. :meth:`close` (or leaving the ``with`` block) stops the thread after the file in
    hand.
    """

    def __init__(
        self,
        files: Iterable[str | Path],
        conversion: Conversion,
        rotator: Rotator | None = None,
        *,
        limit_bytes: int = READ_AHEAD_BYTES,
    ) -> None:
        self._files = [str(f) for f in files]
        self._conversion, self._rotator, self._limit = conversion, rotator, limit_bytes
        self._ready: collections.deque[FrameRecord] = collections.deque()
        self._held = 0
        self._done = self._stopped = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self.started = time.perf_counter()
        #: The thread's CPU seconds and frames, and when all its rows were ready (s after start).
        self.cpu_seconds, self.frames, self.ready_after = 0.0, 0, None
        #: Seconds spent waiting for rows where they are taken.
        self.waited = 0.0
        self._thread = threading.Thread(target=self._produce, name="oath-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        cpu = time.thread_time()
        try:
            rotator = self._rotator or Rotator()
            for path in self._files:
                records = file_records(path, self._conversion, rotator)
                with self._changed:
                    self._changed.wait_for(lambda: self._stopped or self._held < self._limit)
                    if self._stopped:
                        return
                    self._ready.extend(records)
                    self._held += sum(_pixel_bytes(r) for r in records)
                    self.frames += sum(r.status == STATUS_OK for r in records)
                    self._changed.notify_all()
        except BaseException as exc:  # noqa: BLE001 (raised again where the rows are taken)
            self._error = exc
        finally:
            with self._changed:
                self._done = True
                self.cpu_seconds = time.thread_time() - cpu
                self.ready_after = time.perf_counter() - self.started
                self._changed.notify_all()

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> FrameRecord:
        with self._changed:
            if not self._ready and not self._done:
                waiting = time.perf_counter()
                self._changed.wait_for(lambda: self._ready or self._done)
                self.waited += time.perf_counter() - waiting
            if self._ready:
                record = self._ready.popleft()
                self._held -= _pixel_bytes(record)
                self._changed.notify_all()
                return record
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration

    def close(self) -> None:
        """Stop the thread (after the file in hand) and drop the rows not taken."""
        with self._changed:
            self._stopped = True
            self._ready.clear()
            self._held = 0
            self._changed.notify_all()
        self._thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_frames(
    files: Iterable[str | Path], conversion: Conversion, rotator: Rotator | None = None
) -> Iterator[FrameRecord]:
    """Every frame of ``files`` as uint8 pixels ready for the network, or a failed row
    (prepared ahead on a :class:`ReadAhead` thread)."""
    with ReadAhead(files, conversion, rotator) as rows:
        yield from rows


def record_pixels(record: FrameRecord) -> np.ndarray | None:
    """A record's uint8 pixels: its ``image``, else its PNG decoded (as the PNG path would)."""
    if record.image is not None or record.png is None:
        return record.image
    wand = import_wand()
    with wand.Image(blob=record.png, format="png") as img:
        img.type = "grayscale"
        return np.array(img)[:, :, 0]
