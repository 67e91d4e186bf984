# Classify new all-sky images: a model fitted on the labelled data set; new files listed once by
# the main Snakemake process and stored when the run starts (results/predictions/inventory.parquet,
# for the jobs; a dry run writes nothing) and classified in stable shards keyed by site and UT
# hour (classify.shard_unit), one streamed job per shard (raw file -> frames -> Inception-v4 ->
# ridge, the same extraction code as training); then one dataset, one CSV and the pictures;
# then a keogram per site-night (results/predictions/keograms/<site>_<date>.png, oath.archive.keogram);
# then the run's page, results/predictions/report.html (oath.report.classify).


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
        layer=config["features"],
        provenance={"dataset": config["dataset"], "weights": get_weights_description()},
    script:
        "../scripts/train_model.py"


rule classify_shard:
    input:
        files=get_new_shard_files,
        model="results/predictions/model.npz",
        weights=get_checkpoint_files(),
    output:
        predictions="results/predictions/shards/{newshard}.parquet",
        extras=directory("results/predictions/shards/{newshard}.extra"),
    log:
        "logs/classify_shard/{newshard}.log",
    benchmark:
        "benchmarks/classify_shard/{newshard}.tsv"
    conda:
        "../envs/classify.yaml"
    threads: 2
    resources:
        mem_mb=3072,  # as extract_shard: the network; frames stream through, a file at a time
        runtime=get_classify_shard_runtime(),
    params:
        conversion=get_new_image_conversion(),
        weights=get_weights_description(),
        save_images=config["classify"]["save_images"],
        save_features=config["classify"]["save_features"],
        precision=config["precision"],
        backend=config["network"]["backend"],
        batch_size=config["batch_size"],
        gpu_batch_size=config["gpu_batch_size"],
    script:
        "../scripts/classify_shard.py"


rule classify_images:
    input:
        shards=get_new_shard_outputs("results/predictions/shards/{newshard}.parquet"),
    output:
        predictions="results/predictions/predictions.csv",
        dataset=directory("results/predictions/dataset"),
        nights=directory("results/predictions/nights"),
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
        "../envs/classify.yaml"
    resources:
        mem_mb=5500,  # every shard's rows at once, keogram slices too: ~2.4 GB at a station-year
        runtime=30,
    params:
        conversion=get_new_image_conversion(),
    script:
        "../scripts/classify_images.py"


rule draw_keograms:
    input:
        dataset="results/predictions/dataset",
    output:
        keograms=directory("results/predictions/keograms"),
    log:
        "logs/draw_keograms/keograms.log",
    benchmark:
        "benchmarks/draw_keograms/keograms.tsv"
    conda:
        "../envs/classify.yaml"
    resources:
        mem_mb=1000,  # one site-night at a time: 28,800 slices of 256 counts, ~60 MB
        runtime=60,
    params:
        skymaps=config["classify"]["skymap_per_site"],
    script:
        "../scripts/draw_keograms.py"


rule classify_report:
    input:
        dataset="results/predictions/dataset",
        keograms="results/predictions/keograms",
        nights="results/predictions/nights",
        counts="results/predictions/class_counts.png",
        sheet="results/predictions/contact_sheet.png",
        model="results/predictions/model.npz",
    output:
        html=report(
            "results/predictions/report.html",
            caption="../report/classify_report.rst",
            category="Predictions",
            labels={"item": "classify report"},
        ),
    log:
        "logs/classify_report/report.log",
    benchmark:
        "benchmarks/classify_report/report.tsv"
    conda:
        "../envs/classify.yaml"
    resources:
        mem_mb=1000,  # counts per batch of rows, never all rows: 0.34 GB at a station-year
        runtime=10,
    params:
        margin=config["classify"]["report_margin"],
        nights=config["classify"]["report_nights"],
    script:
        "../scripts/classify_report.py"
