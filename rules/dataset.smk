# The data set's own files: the offline demo (dataset "demo"), the published tarball (dataset
# "oath"), and a split file when the data set has none.

if DATASET is not None and DATASET.is_demo:

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


if is_oath_download():

    checkpoint unpack_oath:
        input:
            archive=f"resources/downloads/{get_archive_name(config['oath']['url'])}",
        output:
            folder=directory(str(oath.config.OATH_DIR)),
        log:
            "logs/unpack_oath/oath.log",
        benchmark:
            "benchmarks/unpack_oath/oath.tsv"
        conda:
            "../envs/rotate.yaml"
        resources:
            mem_mb=500,
            runtime=30,  # 500 MB, checked then unpacked
        script:
            "../scripts/unpack_archive.py"


if is_oath_download() or DATASET.split_is_generated:

    rule make_split_file:
        input:
            classifications=get_classifications_file,
        output:
            split=oath.config.GENERATED_SPLIT,
        log:
            "logs/make_split_file/split.log",
        conda:
            "../envs/ridge.yaml"
        params:
            n_splits=config["ridge"]["n_splits"],
            seed=config["ridge"]["split_seed"],
        script:
            "../scripts/make_split_file.py"
