# The published classifier: one RidgeClassifier fit per split and label set, and an alpha sweep
# scored by cross-validation inside the training parts.


rule fit_ridge:
    input:
        features=get_features_file,
        classifications=get_classifications_file,
        split=get_split_file,
    output:
        result="results/ridge/{features}/{labels}/split_{split}.json",
    log:
        "logs/fit_ridge/{features}/{labels}/split_{split}.log",
    benchmark:
        "benchmarks/fit_ridge/{features}/{labels}/split_{split}.tsv"
    conda:
        "../envs/ridge.yaml"
    resources:
        mem_mb=1000,  # the feature matrix twice over
        runtime=5,
    params:
        alpha=config["ridge"]["alpha"],
        train_fraction=config["ridge"]["train_fraction"],
        layer=get_layer,
    script:
        "../scripts/fit_ridge.py"


rule sweep_alpha:
    input:
        features=get_features_file,
        classifications=get_classifications_file,
        split=get_split_file,
    output:
        sweep="results/ridge/{features}/{labels}/alpha_sweep.json",
    log:
        "logs/sweep_alpha/{features}/{labels}.log",
    benchmark:
        "benchmarks/sweep_alpha/{features}/{labels}.tsv"
    conda:
        "../envs/ridge.yaml"
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        alphas=config["ridge"]["sweep_alphas"],
        train_fraction=config["ridge"]["train_fraction"],
        n_splits=config["ridge"]["n_splits"],
        folds=config["ridge"]["sweep_folds"],
        layer=get_layer,
    script:
        "../scripts/sweep_alpha.py"


rule compare_protocols:
    input:
        unpack(get_files_origin),
        features=get_features_file,
        classifications=get_classifications_file,
        split=get_split_file,
    output:
        comparison="results/ridge/{features}/protocols.json",
    log:
        "logs/compare_protocols/{features}.log",
    benchmark:
        "benchmarks/compare_protocols/{features}.tsv"
    conda:
        "../envs/ridge.yaml"
    threads: 2
    resources:
        mem_mb=2000,  # 5,824 x 1001 and x 1536 matrices, standardised per fold
        runtime=30,  # 2 minutes on 2 cores; about 5 with features: PreLogitsFlatten
    params:
        labels=config["labels"],
        n_splits=config["ridge"]["n_splits"],
        seed=config["ridge"]["split_seed"],
        alpha=config["ridge"]["alpha"],
        train_fraction=config["ridge"]["train_fraction"],
        layer=get_layer,
        classifiers=config["compare"]["classifiers"],
    script:
        "../scripts/compare_protocols.py"
