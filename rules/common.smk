# Config validation, the image table, wildcard constraints, input functions and target lists.
# No rules here; the logic behind these functions lives in the oath package.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import oath.config
from oath.data import DatasetError, image_name, rotated_name

validate(config, str(oath.config.schema_path()))

try:
    DATASET = oath.config.resolve_dataset(config)
except DatasetError as exc:
    raise WorkflowError(str(exc)) from None
print(f"oath-pipeline: {DATASET.describe()}", file=sys.stderr)

SHARDS = oath.config.shard_table(DATASET.table, config["shard_size"])
SPLITS = list(range(config["ridge"]["n_splits"]))
DEMO_CHECKPOINT = (
    f"resources/checkpoints/demo_seed{config['demo_checkpoint_seed']}/inception_v4.ckpt"
)
PUBLISHED_FEATURES = DATASET.root / "features" / "auroral_feat.h5"


wildcard_constraints:
    shard=r"\d+-\d+",
    features="extracted|published",
    labels="class6|class2",
    split=r"\d+",


def is_demo_checkpoint():
    return not config["checkpoint"]


def get_checkpoint():
    """Checkpoint path handed to TensorFlow: a V1 file or a V2 prefix."""
    return DEMO_CHECKPOINT if is_demo_checkpoint() else config["checkpoint"]


def get_checkpoint_files():
    """The checkpoint's files, so that new weights re-extract every shard."""
    path = get_checkpoint()
    if Path(path).is_file():
        return [path]
    return [f"{path}.index", f"{path}.data-00000-of-00001"]


def get_weights_description():
    if is_demo_checkpoint():
        return (
            f"demo: deterministic RANDOM weights (seed {config['demo_checkpoint_seed']}), "
            "not the published Inception-v4"
        )
    return f"Inception-v4 checkpoint {config['checkpoint']}"


def get_source_images(rows):
    return [str(DATASET.images_dir / image_name(p)) for p in rows["picNum"]]


def get_rotated_paths(rows):
    return [
        f"results/rotated/{rotated_name(p, a)}"
        for p, a in zip(rows["picNum"], rows["angle"])
    ]


def get_rotated_images():
    return [path for rows in SHARDS.values() for path in get_rotated_paths(rows)]


def get_shard_images(wildcards):
    return get_rotated_paths(SHARDS[wildcards.shard])


def get_feature_sets():
    """Our extracted features, plus the published ones when the data set ships them."""
    return ["extracted", "published"] if PUBLISHED_FEATURES.is_file() else ["extracted"]


def get_features_file(wildcards):
    if wildcards.features == "published":
        return str(PUBLISHED_FEATURES)
    return "results/features/auroral_feat.h5"


def get_split_results(features, labels):
    return expand(
        "results/ridge/{features}/{labels}/split_{split}.json",
        features=features,
        labels=labels,
        split=SPLITS,
    )


def get_ridge_targets():
    return get_split_results(get_feature_sets(), config["labels"]) + expand(
        "results/ridge/{features}/{labels}/alpha_sweep.json",
        features=get_feature_sets(),
        labels=config["labels"],
    )


def get_report_targets():
    return ["results/report/report.html", "results/report/summary.md"]
