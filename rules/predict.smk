# Classify new all-sky images: a model fitted on the labelled data set, new images prepared and
# extracted in shards of input files (the same extraction code as training), one CSV out.


rule train_model:
    input:
        features="results/features/auroral_feat.h5",
        classifications=get_classifications_file,
        split=get_split_file,
    output:
        model="results/predictions/model.npz",
    log:
        "logs/train_model/model.log",
    benchmark:
        "benchmarks/train_model/model.tsv"
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        labels=config["labels"],
        alpha=config["ridge"]["alpha"],
        train_fraction=config["ridge"]["train_fraction"],
        train_on=config["classify"]["train_on"],
        provenance={"dataset": config["dataset"], "weights": get_weights_description()},
    script:
        "../scripts/train_model.py"


rule prepare_new_images:
    input:
        files=get_new_shard_files,
    output:
        manifest="results/predictions/prepared/{newshard}.csv",
        images=directory("results/predictions/prepared/{newshard}"),
    log:
        "logs/prepare_new_images/{newshard}.log",
    benchmark:
        "benchmarks/prepare_new_images/{newshard}.tsv"
    group:
        "new_shard"
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=1000,  # one raw file (20 16-bit frames) at a time
        runtime=15,
    params:
        crop=config["classify"]["crop"],
        crop_per_site=config["classify"]["crop_per_site"],
        scaling=config["classify"]["scaling"],
        angle_per_site=config["classify"]["angle_per_site"],
    script:
        "../scripts/prepare_new_images.py"


rule extract_new_shard:
    input:
        manifest="results/predictions/prepared/{newshard}.csv",
        images="results/predictions/prepared/{newshard}",
        weights=get_checkpoint_files(),
    output:
        features="results/predictions/features/{newshard}.h5",
    log:
        "logs/extract_new_shard/{newshard}.log",
    benchmark:
        "benchmarks/extract_new_shard/{newshard}.tsv"
    group:
        "new_shard"
    conda:
        "../envs/extract.yaml"
    threads: 2
    resources:
        mem_mb=3072,  # as extract_shard
        runtime=30,
    params:
        weights=get_weights_description(),
        precision=config["precision"],
        batch_size=config["batch_size"],
    script:
        "../scripts/extract_new_shard.py"


rule classify_images:
    input:
        model="results/predictions/model.npz",
        features=get_new_shard_outputs("results/predictions/features/{newshard}.h5"),
        manifests=get_new_shard_outputs("results/predictions/prepared/{newshard}.csv"),
    output:
        predictions="results/predictions/predictions.csv",
        counts=report(
            "results/predictions/class_counts.png",
            caption="../report/class_counts.rst",
            category="Predictions",
        ),
        sheet=report(
            "results/predictions/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Predictions",
        ),
    log:
        "logs/classify_images/predictions.log",
    benchmark:
        "benchmarks/classify_images/predictions.tsv"
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/classify_images.py"
