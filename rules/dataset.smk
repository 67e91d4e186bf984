# The data set's own files: the offline demo (dataset "demo"), the published tarball (dataset
# "oath"), and a split file when the data set has none. Each rule runs only when a data set
# needs its output.


rule make_demo_dataset:
    output:
        classifications=str(DATA.demo.classifications),
        split=str(DATA.demo.split_file),
        origins=str(DATA.demo.files_origin),
        images=DATA.demo_images(),
        raw=DATA.demo_raw_files(),
        readme=str(DATA.demo.root / "README.txt"),
    log:
        "logs/make_demo_dataset/demo.log",
    benchmark:
        "benchmarks/make_demo_dataset/demo.tsv"
    conda:
        "../envs/rotate.yaml"
    params:
        demo=config["demo"],  # n_images, seed, image_size
    script:
        "../scripts/make_demo_dataset.py"


checkpoint unpack_oath:
    input:
        archive=get_archive("oath"),
    output:
        folder=directory(str(oath.dataset.source.OATH_DIR)),
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


rule make_split_file:
    input:
        classifications=get_classifications_file,
    output:
        split=str(oath.dataset.source.GENERATED_SPLIT),
    log:
        "logs/make_split_file/split.log",
    benchmark:
        "benchmarks/make_split_file/split.tsv"
    conda:
        "../envs/ridge.yaml"
    params:
        n_splits=config["ridge"]["n_splits"],
        seed=config["ridge"]["split_seed"],
    script:
        "../scripts/make_split_file.py"
