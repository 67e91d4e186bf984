"""Calibration, step 3: how many labels survive the raw route. A ridge model on the PNG
features of split 0's training part labels its held-out images from their PNGs and from
their raw frames through the fitted and the default conversion; ``calibration.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.atomic import write_text
from oath.calibration.match import (
    MATCHED,
    CalibrationError,
    origin_problems,
    read_matched_frames,
    read_matches,
)
from oath.calibration.output import split_parts
from oath.network.device import RunOptions

log = logging.getLogger(__name__)


ROUTES = ("png", "raw_fitted", "raw_default")


def route_records(
    pics: Sequence[int],
    frames: Mapping[int, np.ndarray],
    sites: Mapping[int, str],
    angles: Mapping[int, float],
    conversion: Any,
) -> list[Any]:
    """classify's stream records for raw frames: converted, then turned by each image's own
    angle from classifications.csv (as the rotation rule turned its PNG). Through Wand, not the
    exact map classify uses: OATH's angles differ from image to image, and a map pays off only
    over many frames of one angle."""
    from oath.archive.stream import FrameRecord
    from oath.archive.themis import STATUS_OK
    from oath.imaging.rotation_map import wand_rotate

    records = []
    for pic in pics:
        gray = conversion.to_gray(frames[pic], sites[pic])
        angle = angles[pic]
        image = wand_rotate(gray, angle) if angle else gray
        records.append(FrameRecord(str(pic), 0, None, sites[pic], STATUS_OK, image=image))
    return records


def _relative_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)


def measure_agreement(
    matches_csv: str | Path,
    frames_h5: str | Path,
    fit_json: str | Path,
    features: str | Path,
    classifications: str | Path,
    split_file: str | Path,
    checkpoint: str | Path,
    out_json: str | Path,
    out_model: str | Path,
    *,
    default: Mapping[str, Any] | None = None,
    labels: Sequence[str] = ("class6", "class2"),
    alpha: float = 0.03,
    train_fraction: float = 0.7,
    layer: str = "Logits",
    provenance: Mapping[str, Any] | None = None,
    run: RunOptions = RunOptions(),  # noqa: B008 (frozen)
    files_origin: str | Path | None = None,
) -> dict[str, Any]:
    """calibration.json: the fit's sites, the unmatched images, the files_origin.csv rows left
    out (``files_origin_left_out``: file, line, picNum, reason; read again from
    ``files_origin``) and the route agreement.

    The ridge model (``alpha``, feature set ``layer``) is fitted on the PNG features of split
    0's training part (saved to ``out_model``) and labels split 0's held-out images that have a
    raw frame three ways: ``png``, the data set's PNG features (what the model was trained on);
    ``raw_fitted``, their raw frames through the fitted conversion (``fit_json``); and
    ``raw_default``, through ``default`` (the config's classify conversion, today's guess).
    Both raw routes go through classify's streamed extraction with ``checkpoint``, run as
    ``run`` says (batch size, threads, precision).
    """
    from oath.archive.conversion import Conversion
    from oath.fit.model import load_model, predict, train_model

    started = time.perf_counter()
    fit, matches = json.loads(Path(fit_json).read_text()), read_matches(matches_csv)
    table, _, test_pics = split_parts(classifications, split_file, train_fraction)
    train_model(
        str(features),
        str(classifications),
        list(labels),
        alpha,
        str(out_model),
        split_file=str(split_file),
        split=0,
        train_fraction=train_fraction,
        provenance=dict(provenance or {}),
        layer=layer,
    )
    model = load_model(out_model)
    held = HeldOut.of(_held_out_matches(matches, test_pics, matches_csv), table, frames_h5)
    layers = {"png": _png_layers(features, classifications, held.pic_nums, held.rows, layer)}
    conversions = {
        "raw_fitted": Conversion.from_config(fit["conversion"]),
        "raw_default": Conversion.from_config(default),
    }
    extract_started = time.perf_counter()
    routes = {route: held.records(conversion) for route, conversion in conversions.items()}
    layers.update(_raw_layers(checkpoint, model, routes, layer, run))
    extract_seconds = time.perf_counter() - extract_started
    truth = {name: table[name].to_numpy(dtype=np.int64)[held.rows] for name in labels}
    predicted = {
        route: {name: p.classes for name, p in predict(model, v["model"], layer).items()}
        for route, v in layers.items()
    }
    agreement = _agreement_figures(predicted, truth, layers, labels, held.site_list)
    agreement.update(_agreement_notes(len(held.pics), alpha, layer, extract_seconds))
    result = {
        **{key: fit[key] for key in ("sites", "conversion", "residual_rule")},
        "agreement": agreement,
        "default_conversion": conversions["raw_default"].to_config(),
        **_match_summary(matches, files_origin, held.pic_nums),
        "predictions": _predictions_json(held.pics, truth, predicted),
        "seconds": {"fit": fit.get("fit_seconds"), "agreement": _since(started)},
    }
    write_text(out_json, json.dumps(result, indent=1, sort_keys=True))
    return result


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _held_out_matches(
    matches: pd.DataFrame, test_pics: set[int], matches_csv: str | Path
) -> pd.DataFrame:
    """The matched images of split 0's held-out part; none stops with what to give."""
    matched = matches[(matches["status"] == MATCHED) & matches["picNum"].isin(test_pics)]
    if matched.empty:
        raise CalibrationError(
            f"{matches_csv}: no held-out image of split 0 has a raw frame; nothing to compare. "
            "Give raw_images covering more of files_origin.csv."
        )
    return matched


def _raw_layers(
    checkpoint: str | Path,
    model: Any,
    routes: Mapping[str, Iterable[Any]],
    layer: str,
    run: RunOptions,
) -> dict[str, dict[str, np.ndarray]]:
    """Each raw route's frame records through classify's streamed extraction: the model's
    layer and the Logits per route."""
    from oath.archive.stream import StreamingExtractor, check_model_weights
    from oath.network.checkpoint import checkpoint_sha256

    layers = {}
    with StreamingExtractor(checkpoint, **dataclasses.asdict(run)) as extractor:
        check_model_weights(model, checkpoint_sha256(checkpoint), checkpoint)
        for route, records in routes.items():
            _, out = extractor.run(records, layer)
            layers[route] = {"model": out[layer], "Logits": out["Logits"]}
    return layers


def _png_layers(
    features: str | Path,
    classifications: str | Path,
    pic_nums: np.ndarray,
    rows: list[int],
    layer: str,
) -> dict[str, np.ndarray]:
    """The PNG route: the data set's own features of ``rows`` (the model's layer and Logits)."""
    from oath.network.featurefile import aligned_features, read_features

    feats = read_features(features)
    return {
        "model": aligned_features(features, feats, pic_nums, classifications, layer)[rows],
        "Logits": aligned_features(features, feats, pic_nums, classifications, "Logits")[rows],
    }


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Split 0's held-out images with a raw frame: picNums, sites, angles, frames, table rows."""

    pics: list[int]
    sites: dict[int, str]
    angles: dict[int, float]
    frames: dict[int, np.ndarray]
    pic_nums: np.ndarray  # every picNum of the table, in its order
    rows: list[int]  # the table rows of ``pics``

    @classmethod
    def of(cls, matched: pd.DataFrame, table: pd.DataFrame, frames_h5: str | Path) -> HeldOut:
        pics = sorted(int(p) for p in matched["picNum"])
        pic_nums = table["picNum"].to_numpy(dtype=np.int64)
        row_of = {int(p): i for i, p in enumerate(pic_nums)}
        return cls(
            pics=pics,
            sites=dict(zip(matched["picNum"].astype(int), matched["station"], strict=True)),
            angles=dict(
                zip(table["picNum"].astype(int), table["angle"].astype(float), strict=True)
            ),
            frames=read_matched_frames(frames_h5, pics),
            pic_nums=pic_nums,
            rows=[row_of[p] for p in pics],
        )

    @property
    def site_list(self) -> list[str]:
        return [self.sites[p] for p in self.pics]

    def records(self, conversion: Any) -> list[Any]:
        """The frames as classify's records, through ``conversion`` and each image's angle."""
        return route_records(self.pics, self.frames, self.sites, self.angles, conversion)


def _match_summary(
    matches: pd.DataFrame, files_origin: str | Path | None, pic_nums: np.ndarray
) -> dict[str, Any]:
    """calibration.json's matched count, unmatched images (why) and files_origin.csv rows left
    out (file, line, picNum, reason)."""
    unmatched = matches[matches["status"] != MATCHED]
    return {
        "matched": int((matches["status"] == MATCHED).sum()),
        "unmatched": [
            {"picNum": int(r.picNum), "station": r.station, "time": r.time, "reason": r.reason}
            for r in unmatched.itertuples(index=False)
        ],
        "files_origin_left_out": (
            origin_problems(files_origin, pic_nums) if files_origin is not None else []
        ),
    }


def _agreement_notes(
    n_images: int, alpha: float, layer: str, extract_seconds: float
) -> dict[str, Any]:
    """What the agreement was measured on, and how long the raw routes' extraction took."""
    return {
        "n_images": n_images,
        "images": "split 0's held-out images with a raw frame",
        "model": f"RidgeClassifier(alpha={alpha}) on {layer} of split 0's training part",
        "extraction_seconds": round(extract_seconds, 2),
        "extraction_seconds_per_frame": round(extract_seconds / (2 * n_images), 4),
    }


def _predictions_json(
    pics: list[int],
    truth: Mapping[str, np.ndarray],
    predicted: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, Any]:
    return {
        "picNum": pics,
        "truth": {k: v.tolist() for k, v in truth.items()},
        **{route: {k: v.tolist() for k, v in p.items()} for route, p in predicted.items()},
    }


def _agreement_figures(
    predicted: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, np.ndarray],
    layers: Mapping[str, Mapping[str, np.ndarray]],
    labels: Sequence[str],
    sites: Sequence[str],
) -> dict[str, Any]:
    """Accuracy per route, agreement with the PNG route (overall, per true class, per site),
    and the Logits' relative L2 to the PNG route's; the headline keys are the first label set's."""
    from oath.dataset.table import LABEL_NAMES

    out: dict[str, Any] = {"label_sets": {}}
    site_arr = np.asarray(sites)
    for name in labels:
        y = truth[name]
        entry: dict[str, Any] = {}
        for route in ROUTES:
            entry[f"{route}_accuracy"] = float(np.mean(predicted[route][name] == y))
        for route in ROUTES[1:]:
            same = predicted[route][name] == predicted["png"][name]
            entry[f"{route}_agreement"] = float(np.mean(same))
            entry[f"{route}_agreement_per_class"] = {
                LABEL_NAMES[name][k]: {
                    "n": int((y == k).sum()),
                    "agreement": float(same[y == k].mean()),
                }
                for k in range(len(LABEL_NAMES[name]))
                if (y == k).any()
            }
            entry[f"{route}_agreement_per_site"] = {
                s: float(same[site_arr == s].mean()) for s in sorted(set(sites))
            }
        out["label_sets"][name] = entry
    head = out["label_sets"][labels[0]]
    out.update(
        labels=labels[0],
        png_accuracy=head["png_accuracy"],
        raw_fitted_accuracy=head["raw_fitted_accuracy"],
        raw_default_accuracy=head["raw_default_accuracy"],
        route_agreement=head["raw_fitted_agreement"],
        route_agreement_default=head["raw_default_agreement"],
    )
    for route in ROUTES[1:]:
        rel = _relative_l2(layers[route]["Logits"], layers["png"]["Logits"])
        out[f"{route}_logits_rel_l2"] = {
            "median": float(np.median(rel)),
            "max": float(np.max(rel)),
        }
    return out


def summary_line(result: Mapping[str, Any]) -> str:
    """The one line the terminal gets."""
    a = result["agreement"]
    sites = result["sites"]
    residuals = [
        s["residual_mean_abs"] for s in sites.values() if s["residual_mean_abs"] is not None
    ]
    worst = f"{max(residuals):.2f}" if residuals else "n/a"
    return (
        f"calibrate: {result['matched']} image(s) matched, {len(result['unmatched'])} unmatched"
        f" ({len(result.get('files_origin_left_out', []))} files_origin.csv row(s) left out); "
        f"{sum(1 for s in sites.values() if s['conversion'])} site(s) fitted, held-out residual "
        f"<= {worst} grey levels; {a['labels']} accuracy png {a['png_accuracy']:.3f}, raw fitted "
        f"{a['raw_fitted_accuracy']:.3f}, raw default {a['raw_default_accuracy']:.3f}; labels "
        f"agree with the PNGs' on {a['route_agreement']:.1%} (fitted), "
        f"{a['route_agreement_default']:.1%} (default) of {a['n_images']} held-out image(s)"
    )
