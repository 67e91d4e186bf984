# oath-pipeline: Clausen & Nickisch (2018) on the OATH all-sky images, as one workflow.
#
# Output-path grammar (wildcards: shard = picNum range "00000-00255", features = extracted |
# published, labels = class6 | class2, split = 0..n_splits-1):
#   resources/demo/n{N}_seed{S}_px{P}/...            synthetic demo in the OATH layout
#   resources/checkpoints/demo_seed{seed}/...        random-weight demo checkpoint
#   results/rotated/{picNum:05d}_{angle}.png         rotated images (published names)
#   results/features/shards/{shard}.h5               Logits + PreLogitsFlatten of a shard
#   results/features/auroral_feat.h5                 all of them, published layout
#   results/splits/train_test_split.csv              split file, when the data set has none
#   results/ridge/{features}/{labels}/split_{split}.json   one ridge fit
#   results/ridge/{features}/{labels}/alpha_sweep.json     CV accuracy per alpha
#   results/report/report.html, summary.md, figures/       the report
#   results/predictions/inventory.parquet                  the new files, listed once a run
#   results/predictions/report.html                        the classify run's page
#   results/predictions/keograms/{site}_{date}.png         a keogram per site-night
#   results/calibration/calibration.json, conversion.yaml  raw frames against the images
#   results/calibration/report.html, summary.md            calibrate's own page
# Logs mirror outputs under logs/<rule>/, benchmarks under benchmarks/<rule>/.

from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/dataset.smk"
include: "rules/rotate.smk"
include: "rules/extract.smk"
include: "rules/ridge.smk"
include: "rules/report.smk"
include: "rules/classify.smk"
include: "rules/calibrate.smk"


report: "report/workflow.rst"


onstart:
    store_new_inventory()


localrules:
    all,
    rotate,
    features,
    evaluate,
    classify,
    calibrate,
    fetch_raw_frames,
    render_report,
    render_calibration_report,
    classify_report,


rule all:
    input:
        get_report_targets(),
        get_ridge_targets(),
        get_rotated_images,


rule rotate:
    input:
        get_rotated_images,


rule features:
    input:
        "results/features/auroral_feat.h5",
        get_rotated_images,


rule classify:
    input:
        get_classify_targets(),


rule calibrate:
    input:
        get_calibrate_targets(),


rule evaluate:
    input:
        get_ridge_targets(),
        get_rotated_images,
