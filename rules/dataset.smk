# The data set's own files: the offline demo (when dataset is "demo") and a split file when the
# data set has none.

if DATASET.is_demo:

    rule make_demo_dataset:
        output:
            classifications=str(DATASET.classifications),
            split=str(DATASET.split_file),
            origins=str(DATASET.root / "images" / "files_origin.csv"),
            images=get_source_images(DATASET.table),
        log:
            "logs/make_demo_dataset/demo.log",
        benchmark:
            "benchmarks/make_demo_dataset/demo.tsv"
        conda:
            "../envs/rotate.yaml"
        params:
            n_images=config["demo"]["n_images"],
            seed=config["demo"]["seed"],
            image_size=config["demo"]["image_size"],
        script:
            "../scripts/make_demo_dataset.py"


if DATASET.split_is_generated:

    rule make_split_file:
        input:
            classifications=str(DATASET.classifications),
        output:
            split=str(DATASET.split_file),
        log:
            "logs/make_split_file/split.log",
        conda:
            "../envs/ridge.yaml"
        params:
            n_splits=config["ridge"]["n_splits"],
            seed=config["ridge"]["split_seed"],
        script:
            "../scripts/make_split_file.py"
