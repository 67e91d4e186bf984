"""The report's calibration section: raw frames against OATH's images (``snakemake calibrate``).

Shown when results/calibration/calibration.json exists, in the report and on a page of its own
(results/calibration/report.html, what ``snakemake calibrate`` builds): the residual of the
fitted conversion per site, a few OATH image / converted raw frame / difference triplets, the
agreement of the labels made from raw frames with those made from the PNGs
(:mod:`oath.calibration`), and the files_origin.csv rows and images left out, with the reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from oath.atomic import write_bytes
from oath.report.tables import Section, Table, escape

TITLE = "Raw frames against OATH's images (calibrate)"


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _conversion_text(conversion: dict[str, Any] | None) -> str:
    if not conversion:
        return "not fitted"
    crop, scaling = conversion["crop"], conversion["scaling"]
    return (
        f"{conversion['orientation']}; centre ({crop['center_row']:g}, {crop['center_col']:g}), "
        f"radius {crop['radius']:g}; {scaling['mode']} {scaling['low']:g}..{scaling['high']:g}"
    )


def sites_table(result: dict[str, Any]) -> Table:
    rows = []
    for site, entry in sorted(result["sites"].items()):
        families = entry.get("family_validation_residuals") or {}
        rows.append(
            (
                site,
                entry["matched"],
                entry["unmatched"],
                entry["family"],
                _number(entry["residual_mean_abs"]),
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(families.items())) or "",
                _conversion_text(entry["conversion"]),
            )
        )
    header = [
        "site",
        "matched",
        "unmatched",
        "scaling chosen",
        "held-out residual (grey levels)",
        "validation residual per family",
        "fitted conversion",
    ]
    return Table.of(header, rows, numeric=(1, 2, 4))


def agreement_table(result: dict[str, Any]) -> Table:
    rows = []
    for name, entry in result["agreement"]["label_sets"].items():
        rows.append(
            (
                name,
                f"{entry['png_accuracy']:.3f}",
                f"{entry['raw_fitted_accuracy']:.3f}",
                f"{entry['raw_default_accuracy']:.3f}",
                f"{entry['raw_fitted_agreement']:.3f}",
                f"{entry['raw_default_agreement']:.3f}",
            )
        )
    header = [
        "label set",
        "accuracy: OATH PNGs",
        "accuracy: raw, fitted conversion",
        "accuracy: raw, default conversion",
        "agreement with PNG labels: fitted",
        "agreement with PNG labels: default",
    ]
    return Table.of(header, rows, numeric=(1, 2, 3, 4, 5), marked=(0,))


def per_class_table(result: dict[str, Any]) -> Table:
    agreement = result["agreement"]
    entry = agreement["label_sets"][agreement["labels"]]
    fitted = entry["raw_fitted_agreement_per_class"]
    default = entry["raw_default_agreement_per_class"]
    rows = [
        (
            name,
            fitted[name]["n"],
            f"{fitted[name]['agreement']:.3f}",
            f"{default[name]['agreement']:.3f}",
        )
        for name in fitted
    ]
    header = [
        f"{agreement['labels']} class (true)",
        "images",
        "agreement: fitted",
        "agreement: default",
    ]
    return Table.of(header, rows, numeric=(1, 2, 3))


def origins_left_out_part(rows: list[dict[str, Any]], words: str) -> tuple[list[str], list[str]]:
    """HTML and Markdown: ``words`` and the table of files_origin.csv rows left out, with file
    and line (line 0: the picNum has no row); nothing when there are none."""
    if not rows:
        return [], []
    body = [
        (
            Path(r["file"]).name,
            r["line"] or "no row",
            "" if r["picNum"] is None else r["picNum"],
            r["reason"],
        )
        for r in rows
    ]
    table = Table.of(["file", "line", "picNum", "why left out"], body, numeric=(1, 2))
    return [f"<p>{escape(words)}</p>", table.html()], ["", words, "", table.markdown(), ""]


def write_calibration_page(
    calibration: str | Path, triplets: str | Path | None, html: str | Path, markdown: str | Path
) -> None:
    """The calibration section alone, as a self-contained HTML page and Markdown: what
    ``snakemake calibrate`` shows without the rest of the report (the ridge and protocol
    comparisons it does not use)."""
    from oath.report.page import CSS

    section = calibration_section(calibration, triplets)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(TITLE)}</h1>\n{section.html}\n</body>\n</html>\n"
    )
    write_bytes(html, page.encode())
    write_bytes(markdown, f"# {TITLE}\n\n{section.markdown}\n".encode())


def calibration_section(calibration: str | Path, triplets: str | Path | None) -> Section:
    """The section from calibration.json and the triplet sheet PNG."""
    result = json.loads(Path(calibration).read_text())
    agreement = result["agreement"]
    fitted_l2 = agreement["raw_fitted_logits_rel_l2"]
    default_l2 = agreement["raw_default_logits_rel_l2"]
    intro = (
        f"{result['matched']} image(s) matched to their raw frame through files_origin.csv, "
        f"{len(result['unmatched'])} not. The conversion was fitted per site on split 0's "
        f"training images and is scored on its held-out ones: {result['residual_rule']}. The "
        f"ridge model of split 0's training PNG features then labels the "
        f"{agreement['n_images']} held-out image(s) with a raw frame three ways: from OATH's "
        "PNGs, from the raw frames through the fitted conversion, and through the default one "
        "(classify's config). The agreement is the share of images whose label from the raw "
        "frame equals the label from the PNG: the labels an archive run keeps when it starts "
        f"from raw frames. Logits relative L2 to the PNG route: fitted median "
        f"{fitted_l2['median']:.2e} (max {fitted_l2['max']:.2e}), default median "
        f"{default_l2['median']:.2e} (max {default_l2['max']:.2e})."
    )
    use = "snakemake classify --configfile results/calibration/conversion.yaml"
    html = [f"<p>{escape(intro)}</p>", sites_table(result).html(), agreement_table(result).html()]
    html.append(per_class_table(result).html())
    md = [intro, "", sites_table(result).markdown(), "", agreement_table(result).markdown(), ""]
    md += [per_class_table(result).markdown(), ""]
    if triplets is not None and Path(triplets).is_file():
        uri = "data:image/png;base64," + base64.b64encode(Path(triplets).read_bytes()).decode()
        html.append(
            f'<figure><img src="{uri}" alt="OATH image, converted raw frame, difference">'
            "<figcaption>Per site, a held-out image (the one with the median residual): OATH's "
            "PNG, its raw frame through the fitted conversion, their difference, and the frame "
            "through the default conversion.</figcaption></figure>"
        )
    notes = [entry["angle_note"] for entry in result["sites"].values() if "angle_note" in entry]
    if notes:
        html.append(f'<p class="small">Angles: {escape(notes[0])}.</p>')
    words = (
        "files_origin.csv rows left out of the calibration (station or time unreadable or unknown):"
    )
    left_html, left_md = origins_left_out_part(result.get("files_origin_left_out") or [], words)
    html += left_html
    md += left_md
    unmatched = result["unmatched"][:10]
    if unmatched:
        rows = [(u["picNum"], u["station"], u["time"], u["reason"]) for u in unmatched]
        more = len(result["unmatched"]) - len(unmatched)
        html.append(Table.of(["picNum", "station", "time", "why unmatched"], rows).html())
        if more:
            html.append(f'<p class="small">... and {more} more in calibration.json.</p>')
    html.append(f'<p class="small">Use the fitted conversion: <code>{escape(use)}</code></p>')
    md.append(f"Use the fitted conversion: `{use}`")
    return Section(TITLE, "\n".join(html), "\n".join(md))
