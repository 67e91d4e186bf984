# Config validation, the image table, wildcard constraints, input functions and target lists.
# No rules here; the logic behind these functions lives in the oath package.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import oath.config
import oath.download
import oath.inventory
from oath.data import DatasetError, image_name, rotated_name

validate(config, str(oath.config.schema_path()))

try:
    # None while dataset "oath" is still to be downloaded: see is_oath_download().
    DATASET = oath.config.resolve_dataset(config)
except DatasetError as exc:
    raise WorkflowError(str(exc)) from None

if DATASET is None:
    print(
        f"oath-pipeline: data set oath is not under {oath.config.OATH_DIR} yet: planning its "
        f"download from {config['oath']['url']} and {config['oath']['n_images']} images",
        file=sys.stderr,
    )
    SHARDS = {}
    SHARD_NAMES = oath.config.shard_names(
        range(1, config["oath"]["n_images"] + 1), config["shard_size"]
    )
else:
    print(f"oath-pipeline: {DATASET.describe()}", file=sys.stderr)
    SHARDS = oath.config.shard_table(DATASET.table, config["shard_size"])
    SHARD_NAMES = list(SHARDS)

SPLITS = list(range(config["ridge"]["n_splits"]))
DEMO_CHECKPOINT = (
    f"resources/checkpoints/demo_seed{config['demo_checkpoint_seed']}/inception_v4.ckpt"
)
PUBLISHED_CHECKPOINT = "resources/checkpoints/inception_v4_2016_09_09/inception_v4.ckpt"


wildcard_constraints:
    shard=r"\d+-\d+",
    features="extracted|published",
    labels="class6|class2",
    split=r"\d+",
    newshard=r"[a-z0-9]+/[0-9A-Za-z-]+",
    archive=r"[^/]+\.(tgz|tar\.gz|tar)",


# --- the data set --------------------------------------------------------------------------


def is_oath_download():
    """True while dataset "oath" waits for its tarball: the table is read after unpacking."""
    return DATASET is None


def get_archive_name(url):
    return oath.download.archive_name(url)


def get_oath_root():
    """The unpacked OATH folder (after the unpack_oath checkpoint has run)."""
    unpacked = checkpoints.unpack_oath.get().output.folder
    root = oath.config.find_dataset_root(unpacked)
    if root is None:
        raise WorkflowError(
            f"{unpacked}: the OATH tarball holds no classifications/classifications.csv. "
            f"Check oath.url, delete {unpacked} and the tarball, and run again."
        )
    return root


_OATH_PLAN = []


def get_oath_plan():
    """The downloaded data set's plan, read once the tarball is unpacked."""
    if not _OATH_PLAN:
        get_oath_root()
        try:
            _OATH_PLAN.append(oath.config.resolve_dataset(config))
        except DatasetError as exc:
            raise WorkflowError(str(exc)) from None
    return _OATH_PLAN[0]


def get_classifications_file(wildcards=None):
    if is_oath_download():
        return str(get_oath_plan().classifications)
    return str(DATASET.classifications)


def get_files_origin(wildcards):
    """{"files_origin": path} when the data set has images/files_origin.csv, else {}."""
    if is_oath_download():
        root = get_oath_root()
    elif DATASET.is_demo:
        return {"files_origin": str(DATASET.root / "images" / "files_origin.csv")}
    else:
        root = DATASET.root
    path = root / "images" / "files_origin.csv"
    return {"files_origin": str(path)} if path.is_file() else {}


def get_split_file(wildcards=None):
    if is_oath_download():
        return str(get_oath_plan().split_file)
    return str(DATASET.split_file)


def get_source_images(rows):
    return [str(DATASET.images_dir / image_name(p)) for p in rows["picNum"]]


def get_rotated_paths(rows):
    return [
        f"results/rotated/{rotated_name(p, a)}"
        for p, a in zip(rows["picNum"], rows["angle"])
    ]


def get_downloaded_shard_rows(wildcards):
    plan = get_oath_plan()
    rows = oath.config.shard_table(plan.table, config["shard_size"]).get(
        wildcards.shard
    )
    if rows is None:
        raise WorkflowError(
            f"{plan.classifications}: no image falls in shard {wildcards.shard}; the tarball "
            f"has {len(plan.table)} images, not the oath.n_images = {config['oath']['n_images']} "
            "the plan assumed. Set oath.n_images to that number and run again."
        )
    return plan, rows


def get_downloaded_shard_images(wildcards):
    plan, rows = get_downloaded_shard_rows(wildcards)
    return [str(plan.images_dir / image_name(p)) for p in rows["picNum"]]


def get_downloaded_shard_angles(wildcards):
    return list(get_downloaded_shard_rows(wildcards)[1]["angle"])


def get_shard_manifests():
    return expand("results/rotated/shards/{shard}.txt", shard=SHARD_NAMES)


def get_rotated_images():
    """Every rotated image plus the shard manifests, for the targets to request.

    Extraction reads a shard's manifest only; asking for each image here is what makes a
    changed angle (a new file name) rerun its shard.
    """
    return [
        p for rows in SHARDS.values() for p in get_rotated_paths(rows)
    ] + get_shard_manifests()


# --- weights -------------------------------------------------------------------------------


def get_checkpoint_choice():
    """random | published | a path; "" picks random for the demo, published otherwise."""
    choice = config["checkpoint"]
    if not choice:
        return "random" if config["dataset"] == oath.config.DEMO else "published"
    return choice


def is_random_checkpoint():
    return get_checkpoint_choice() == "random"


def is_published_checkpoint():
    return get_checkpoint_choice() == "published"


def get_checkpoint():
    """Checkpoint path handed to TensorFlow: a V1 file or a V2 prefix."""
    choice = get_checkpoint_choice()
    return {"random": DEMO_CHECKPOINT, "published": PUBLISHED_CHECKPOINT}.get(
        choice, choice
    )


def get_checkpoint_files():
    """The checkpoint's files, so that new weights re-extract every shard."""
    path = get_checkpoint()
    if is_published_checkpoint() or Path(path).is_file():
        return [path]
    return [f"{path}.index", f"{path}.data-00000-of-00001"]


def get_weights_description():
    if is_random_checkpoint():
        return (
            f"demo: deterministic RANDOM weights (seed {config['demo_checkpoint_seed']}), "
            "not the published Inception-v4"
        )
    if is_published_checkpoint():
        return f"published Inception-v4 (TF-slim inception_v4_2016_09_09, {config['inception_v4']['url']})"
    return f"Inception-v4 checkpoint {config['checkpoint']}"


def get_download_url(wildcards):
    urls = {
        get_archive_name(config[key]["url"]): config[key]
        for key in ("oath", "inception_v4")
    }
    return urls[wildcards.archive]["url"]


def get_download_sha256(wildcards):
    sources = {
        get_archive_name(config[key]["url"]): config[key]
        for key in ("oath", "inception_v4")
    }
    return sources[wildcards.archive]["sha256"]


# --- features, fits, targets ---------------------------------------------------------------


def has_published_features():
    if is_oath_download():
        return True  # the OATH tarball ships features/auroral_feat.h5
    return (DATASET.root / "features" / "auroral_feat.h5").is_file()


def get_feature_sets():
    """Our extracted features, plus the published ones when the data set ships them."""
    return ["extracted", "published"] if has_published_features() else ["extracted"]


def get_published_features(wildcards=None):
    root = get_oath_root() if is_oath_download() else DATASET.root
    return str(root / "features" / "auroral_feat.h5")


def get_features_file(wildcards):
    if wildcards.features == "published":
        return get_published_features()
    return "results/features/auroral_feat.h5"


def get_split_results(features, labels):
    return expand(
        "results/ridge/{features}/{labels}/split_{split}.json",
        features=features,
        labels=labels,
        split=SPLITS,
    )


def get_published_split_results():
    """The ridge on the published features, when the data set ships them."""
    return (
        get_split_results("published", config["labels"])
        if has_published_features()
        else []
    )


def get_comparison():
    if has_published_features():
        return ["results/features/comparison_with_published.json"]
    return []


def get_ridge_targets():
    return get_split_results(get_feature_sets(), config["labels"]) + expand(
        "results/ridge/{features}/{labels}/alpha_sweep.json",
        features=get_feature_sets(),
        labels=config["labels"],
    )


def get_report_targets():
    return ["results/report/report.html", "results/report/summary.md"]


# --- new images (classify) -----------------------------------------------------------------
# The input files are listed once per run, by the main Snakemake process, into
# NEW_INVENTORY; jobs (re-parsing this file on a cluster node) read that table instead of
# walking the archive again. Shards are keyed by site and UT hour (oath.inventory).

NEW_INVENTORY = "results/predictions/inventory.parquet"
_NEW_SHARDS = []


def get_new_image_shards():
    """Shard key (e.g. gill/2014-03-10T06) -> its input files, from the inventory."""
    if not _NEW_SHARDS:
        _NEW_SHARDS.append(oath.inventory.shard_files(load_new_inventory()))
    return _NEW_SHARDS[0]


def load_new_inventory():
    if not config["new_images"]:
        raise WorkflowError(
            "classify needs new images: set new_images in config.yaml or run "
            "snakemake classify --config new_images=/path/to/images"
        )
    try:
        if not workflow.is_main_process:
            return oath.inventory.read_inventory(NEW_INVENTORY)
        table = oath.inventory.make_inventory(
            config["new_images"],
            unit=config["classify"]["shard_unit"],
            image_buckets=config["classify"]["image_buckets"],
        )
        oath.inventory.write_inventory(table, NEW_INVENTORY)
    except oath.inventory.InventoryError as exc:
        raise WorkflowError(str(exc)) from None
    print(
        f"oath-pipeline: {len(table)} new file(s) in "
        f"{table['shard'].nunique()} shard(s), listed in {NEW_INVENTORY}",
        file=sys.stderr,
    )
    return table


def get_new_shard_files(wildcards):
    return get_new_image_shards()[wildcards.newshard]


def get_new_shard_outputs(pattern):
    def outputs(wildcards):
        return expand(pattern, newshard=get_new_image_shards())

    return outputs


def get_new_image_conversion():
    """Crop, scaling and angles for raw frames, as plain values for the jobs."""
    keys = ("crop", "scaling", "crop_per_site", "angle_per_site")
    return {key: config["classify"][key] for key in keys}


def get_classify_shard_runtime():
    """Minutes per shard: an hour is ~1,200 frames (a few minutes), a day 24 times that."""
    return 30 if config["classify"]["shard_unit"] == "hour" else 360


def get_classify_targets():
    return [
        "results/predictions/predictions.csv",
        "results/predictions/class_counts.png",
        "results/predictions/contact_sheet.png",
        "results/predictions/dataset",
        "results/predictions/nights",
    ]
