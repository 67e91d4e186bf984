"""Pictures shared by the report and the classification of new images: PNG bytes of a figure,
grey thumbnails, confusion matrices and the contact sheet (a grid of example images per class).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

THUMBNAIL_PX = 128


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG, without a software tag (same bytes on every run)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def thumbnail(path: Path, max_px: int = THUMBNAIL_PX) -> np.ndarray | None:
    """Grey values in [0, 1], at most ``max_px`` per side; None when the file is missing or
    unreadable (logged)."""
    if not path.is_file():
        log.warning("image %s not found", path)
        return None
    try:
        pixels = np.asarray(mpimg.imread(path), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as exc:
        log.warning("%s: cannot read (%s)", path, exc)
        return None
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=2)
    if pixels.max() > 1.0:
        pixels = pixels / 255.0
    step = max(1, int(np.ceil(max(pixels.shape) / max_px)))
    if step > 1:
        h, w = (pixels.shape[0] // step) * step, (pixels.shape[1] // step) * step
        pixels = pixels[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
    return pixels


@dataclass(frozen=True)
class SheetCell:
    """One image of a contact sheet: its pixels (None: missing) and a caption above it."""

    pixels: np.ndarray | None
    caption: str


@dataclass(frozen=True)
class SheetRow:
    """One class: its label (left of the row), its images, and what to say when it has none."""

    label: str
    cells: Sequence[SheetCell] = field(default_factory=list)
    empty_text: str = ""


def contact_sheet(
    rows: Sequence[SheetRow], title: str, *, columns: int = 1, caption_size: int = 8
) -> bytes:
    """A grid of example images, one row per class, as PNG bytes; at least ``columns`` wide."""
    cols = max([len(r.cells) for r in rows] + [columns])
    fig = Figure(figsize=(1.6 * cols + 1.2, 1.7 * len(rows)))
    for r, row in enumerate(rows):
        for c in range(cols):
            ax = fig.add_subplot(len(rows), cols, r * cols + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row.cells):
                _draw_cell(ax, row.cells[c], caption_size)
            else:
                ax.set_frame_on(False)
                if c == 0 and row.empty_text:
                    ax.text(0.5, 0.5, row.empty_text, ha="center", va="center", fontsize=8)
            if c == 0:
                ax.set_ylabel(row.label, fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return png_bytes(fig)


def _draw_cell(ax: Any, cell: SheetCell, caption_size: int) -> None:
    if cell.pixels is not None:
        ax.imshow(cell.pixels, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.text(0.5, 0.5, "missing", ha="center", va="center")
    ax.set_title(cell.caption, fontsize=caption_size)


def confusion_figure(summary: dict[str, Any]) -> bytes:
    """Two panels: the last split's counts (as printed) and all splits pooled, row-normalised."""
    names = summary["class_names"]
    k = len(names)
    last = np.asarray(summary["last_confusion_matrix"], dtype=float)
    pooled = np.asarray(summary["pooled_confusion_matrix"], dtype=float)
    side = 3.2 + 0.55 * k
    fig = Figure(figsize=(2 * side + 1.0, side))
    panels = [
        (last, f"last split (split {summary['last_split']}): counts", False),
        (pooled, f"all {len(summary['splits'])} splits pooled: % of true class", True),
    ]
    for i, (matrix, title, normalise) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for r in range(k):
            for c in range(k):
                text = f"{100 * shares[r, c]:.0f}" if normalise else f"{int(matrix[r, c])}"
                colour = "white" if shares[r, c] > 0.55 else "#1d2330"
                ax.text(c, r, text, ha="center", va="center", color=colour, fontsize=10)
        ax.set_xticks(range(k), names, rotation=35, ha="right")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
    fig.suptitle(
        f"{summary['labels']}: RidgeClassifier(alpha={summary['alpha']:g}), test accuracy "
        f"{summary['mean_accuracy']:.4f} ± {summary['std_accuracy']:.4f}",
        fontsize=11,
    )
    fig.tight_layout()
    return png_bytes(fig)
