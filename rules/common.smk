# Config validation, the data source, wildcard constraints, input functions and target lists.
# No rules here; the logic behind these functions lives in the oath package (the data set,
# folder or download, in oath.dataset.source).

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import oath.calibration.match
import oath.config
import oath.dataset.source
import oath.dataset.download
import oath.archive.inventory
from oath.dataset.table import DatasetError

validate(config, str(oath.config.schema_path()))


def get_unpacked_oath():
    """The folder the OATH tarball went into, once the unpack_oath checkpoint has run."""
    return checkpoints.unpack_oath.get().output.folder


try:
    DATA = oath.dataset.source.DataSource(config, wait_for_unpack=get_unpacked_oath)
except DatasetError as exc:
    raise WorkflowError(str(exc)) from None
print(f"oath-pipeline: {DATA.describe()}", file=sys.stderr)

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


def get_archive(key):
    return (
        f"resources/downloads/{oath.dataset.download.archive_name(config[key]['url'])}"
    )


def get_classifications_file(wildcards=None):
    return DATA.classifications()


def get_files_origin(wildcards):
    return DATA.files_origin()


def get_split_file(wildcards=None):
    return DATA.split_file()


def get_shard_images(wildcards):
    return DATA.shard_images(wildcards.shard)


def get_shard_angles(wildcards):
    return DATA.shard_angles(wildcards.shard)


def get_shard_rotated(wildcards):
    return DATA.shard_rotated(wildcards.shard)


def get_rotated_dir(wildcards):
    """The folder of the rotated images, whose names a shard manifest lists."""
    return str(oath.dataset.source.ROTATED_DIR)


def get_shard_manifests():
    return DATA.shard_manifests()


def get_rotated_images(wildcards):
    """The shard manifests, for the targets that promise every rotated image in place."""
    return DATA.checked_manifests()


def get_shard_features():
    return expand("results/features/shards/{shard}.h5", shard=DATA.shard_names)


# --- weights -------------------------------------------------------------------------------


def get_checkpoint_choice():
    """random | published | a path; "" picks random for the demo, published otherwise."""
    choice = config["checkpoint"]
    if not choice:
        return "random" if DATA.is_demo else "published"
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


def get_download(wildcards):
    """The config entry (url, sha256) of the archive a download_archive job fetches."""
    sources = {
        oath.dataset.download.archive_name(config[key]["url"]): config[key]
        for key in ("oath", "inception_v4")
    }
    return sources[wildcards.archive]


def get_download_url(wildcards):
    return get_download(wildcards)["url"]


def get_download_sha256(wildcards):
    return get_download(wildcards)["sha256"]


# --- features, fits, targets ---------------------------------------------------------------


def get_feature_sets():
    return DATA.feature_sets()


def get_published_features(wildcards=None):
    return DATA.published_features()


def get_features_file(wildcards):
    if wildcards.features == "published":
        return get_published_features()
    return "results/features/auroral_feat.h5"


def get_layer(wildcards):
    """The feature set a fit uses: the configured one on our features, Logits on the
    published auroral_feat.h5 (all it holds)."""
    return "Logits" if wildcards.features == "published" else config["features"]


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
        if DATA.has_published_features()
        else []
    )


def get_comparison():
    if DATA.has_published_features():
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
# The input files are listed once per run, in memory, by the main Snakemake process; when the run
# starts (onstart: never in a dry run) it stores the listing in NEW_INVENTORY, and jobs
# (re-parsing this file on a cluster node) read that table instead of walking the archive again.
# Shards are keyed by site and UT hour (oath.archive.inventory).

NEW_INVENTORY = "results/predictions/inventory.parquet"
_NEW_INVENTORY = []


def get_new_image_shards():
    """Shard key (e.g. gill/2014-03-10T06) -> its input files, from the inventory."""
    return oath.archive.inventory.shard_files(get_new_inventory())


def store_new_inventory():
    """Store this run's listing for its jobs, if it planned classify shards (onstart)."""
    if _NEW_INVENTORY:
        oath.archive.inventory.write_inventory(_NEW_INVENTORY[0], NEW_INVENTORY)


def get_new_inventory():
    """The inventory table, listed (main process) or read (jobs) once per process."""
    if not _NEW_INVENTORY:
        _NEW_INVENTORY.append(load_new_inventory())
    return _NEW_INVENTORY[0]


def load_new_inventory():
    if not config["new_images"]:
        raise WorkflowError(
            "classify needs new images: set new_images in config.yaml or run "
            "snakemake classify --config new_images=/path/to/images"
        )
    try:
        if not workflow.is_main_process:
            return oath.archive.inventory.read_inventory(NEW_INVENTORY)
        table = oath.archive.inventory.make_inventory(
            config["new_images"],
            unit=config["classify"]["shard_unit"],
            image_buckets=config["classify"]["image_buckets"],
        )
    except oath.archive.inventory.InventoryError as exc:
        raise WorkflowError(str(exc)) from None
    print(
        f"oath-pipeline: {len(table)} new file(s) in {table['shard'].nunique()} shard(s)",
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
    keys = (
        "crop",
        "scaling",
        "crop_per_site",
        "angle_per_site",
        "scaling_per_site",
        "orientation_per_site",
    )
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
        "results/predictions/report.html",
    ]


# --- calibrate: raw frames against the data set's own images ----------------------------------

CALIBRATION = "results/calibration/calibration.json"
CALIBRATION_FIGURE = "results/calibration/triplets.png"


FETCHED_RAW_LISTING = "resources/raw_frames/listing.txt"


def is_fetching_raw_images():
    """calibrate fetches the raw files itself: no raw_images, not the demo, calibrate.fetch."""
    return (
        not config["raw_images"] and not DATA.is_demo and config["calibrate"]["fetch"]
    )


def get_fetched_raw_dir(wildcards, output):
    """The folder of the fetched listing: pyucalgarysrs puts THEMIS_ASI_RAW/... below it."""
    return str(Path(output.listing).parent)


def get_raw_images(wildcards=None):
    """Where the raw frames behind the data set are: raw_images, the demo's own raw folder,
    or the listing of the files calibrate fetched."""
    if config["raw_images"]:
        return config["raw_images"]
    if DATA.is_demo:
        return DATA.demo_raw_dir()
    if is_fetching_raw_images():
        return FETCHED_RAW_LISTING
    raise WorkflowError(oath.calibration.match.RAW_IMAGES_NEEDED)


def get_raw_image_files(wildcards):
    """The raw files calibrate reads: the demo's planned ones, the fetched listing, or those
    of raw_images."""
    if not config["raw_images"] and DATA.is_demo:
        return DATA.demo_raw_files()
    if is_fetching_raw_images():
        return [FETCHED_RAW_LISTING]
    try:
        return [str(p) for p in oath.calibration.match.list_raw_files(get_raw_images())]
    except oath.calibration.match.CalibrationError as exc:
        raise WorkflowError(str(exc)) from None


def get_calibration_origins(wildcards):
    """images/files_origin.csv: calibrate cannot match an image to its raw frame without it."""
    found = DATA.files_origin()
    if not found:
        raise WorkflowError(
            f"{DATA.plan.files_origin}: no such file. calibrate matches every image to its raw "
            "frame through the station and time files_origin.csv gives; a data set without "
            "it cannot be calibrated."
        )
    return found["files_origin"]


def get_dataset_images(wildcards):
    return DATA.image_files()


def get_images_dir(wildcards):
    return str(DATA.plan.images_dir)


def is_calibration_reported():
    """The report shows the calibration once calibrate has run and its raw frames are still
    known (raw_images given again, the demo, or calibrate.fetch)."""
    if not Path(CALIBRATION).is_file():
        return False
    if config["raw_images"] or DATA.is_demo or is_fetching_raw_images():
        return True
    print(
        f"oath-pipeline: {CALIBRATION} is left out of the report: give raw_images as for "
        "calibrate to keep it",
        file=sys.stderr,
    )
    return False


def get_calibration_report(wildcards):
    return [CALIBRATION, CALIBRATION_FIGURE] if is_calibration_reported() else []


def get_calibrate_targets():
    """The calibration and its own page: not the main report, whose protocol comparisons
    the calibration does not use (the report shows the calibration on its next run)."""
    return [
        CALIBRATION,
        "results/calibration/conversion.yaml",
        "results/calibration/report.html",
    ]
