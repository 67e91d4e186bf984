"""What made the numbers: which weights, which data set, which settings.

Which weights made the features is read from the attribute the extraction records in the
feature file (``random_weights``: "true" or "false"), never guessed from the words of the
``weights`` description. Files without it (the published features) did not use random weights.
"""

from __future__ import annotations

import json
from typing import Any

from oath.network.featurefile import RANDOM_WEIGHTS_ATTR
from oath.report.tables import Table

#: Config keys the report shows (and so the only ones its rule depends on): data set, demo and
#: download sources, the weights, the precision, the label sets and the ridge settings. Not
#: run-time knobs (shard_size, batch_size) nor the classification of new images (classify.*).
REPORTED_CONFIG_KEYS = (
    "dataset",
    "demo",
    "oath",
    "checkpoint",
    "demo_checkpoint_seed",
    "inception_v4",
    "precision",
    "features",
    "labels",
    "ridge",
)


def reported_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of the workflow config the report shows."""
    return {key: config[key] for key in REPORTED_CONFIG_KEYS if key in config}


def has_random_weights(attrs: dict[str, Any]) -> bool:
    """Whether the feature file records that its weights were random (not the published)."""
    return str(attrs.get(RANDOM_WEIGHTS_ATTR, "false")).strip().lower() == "true"


def describe_dataset(config: dict[str, Any], n_images: int) -> str:
    dataset = config.get("dataset", "unknown")
    if dataset == "demo":
        demo = config.get("demo", {})
        return (
            f"synthetic demo data set ({n_images} images; demo seed {demo.get('seed', '?')}, "
            f"{demo.get('image_size', '?')} px), not the OATH images"
        )
    return f"OATH-layout folder {dataset} ({n_images} images)"


def parameters_table(
    config: dict[str, Any],
    attrs: dict[str, Any],
    first: dict[str, Any],
    n_images: int,
    paths: dict[str, str],
) -> Table:
    """The parameters in use, as (item, value) rows.

    ``first`` is the first label set's ridge summary; ``paths`` names the ``classifications``
    and ``features`` files read.
    """
    ridge = config.get("ridge", {})
    prov = first["provenance"]
    weights = attrs.get("weights") or "not recorded in the feature file"
    rows = [
        ("Data set", describe_dataset(config, n_images)),
        ("Labels table", paths["classifications"]),
        ("Split file", str(prov.get("split_file", "?"))),
        ("Weights", weights),
        ("Checkpoint", attrs.get("checkpoint") or config.get("checkpoint") or "not recorded"),
        ("Checkpoint SHA-256", attrs.get("checkpoint_sha256") or "not recorded"),
        ("Precision", attrs.get("precision") or "not recorded"),
        ("Features", paths["features"]),
        ("Feature set", str(prov.get("layer") or "Logits")),
        ("Ridge alpha", f"{first['alpha']:g}"),
        ("Train fraction", f"{first['train_fraction']:g}"),
        ("Splits", str(len(first["splits"]))),
        (
            "Split seed",
            f"{ridge.get('split_seed', '?')} (used only when the data set ships no split file)",
        ),
        ("scikit-learn", str(prov.get("sklearn_version", "?"))),
    ]
    return Table.of(["item", "value"], rows)


def config_table(config: dict[str, Any]) -> Table:
    """Every config key the report was given, flattened to ``a.b`` names."""
    return Table.of(["key", "value"], _flatten(config))


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", json.dumps(value, default=str)))
    return rows
