# The report: the original script's printed line, pictures and tables, as HTML and Markdown,
# with the figures registered for `snakemake --report report.zip`. Only the config keys the
# report shows are its params, so that editing classify.* does not rerun it.
from oath.report.provenance import reported_config


rule render_report:
    input:
        split_results=get_split_results("extracted", config["labels"]),
        sweeps=expand(
            "results/ridge/extracted/{labels}/alpha_sweep.json",
            labels=config["labels"],
        ),
        published_results=get_published_split_results(),
        comparison=get_comparison(),
        protocols=expand(
            "results/ridge/{features}/protocols.json", features=get_feature_sets()
        ),
        features="results/features/auroral_feat.h5",
        classifications=get_classifications_file,
        manifests=get_shard_manifests(),
        calibration=get_calibration_report,
    output:
        html=report(
            "results/report/report.html",
            caption="../report/html_report.rst",
            category="Ridge",
            labels={"item": "HTML report"},
        ),
        markdown="results/report/summary.md",
        figures=[
            report(
                f"results/report/figures/confusion_{labels}.png",
                caption="../report/confusion_matrix.rst",
                category="Ridge",
                subcategory=labels,
                labels={"figure": "confusion matrix", "labels": labels},
            )
            for labels in config["labels"]
        ],
        examples=[
            report(
                f"results/report/figures/examples_{labels}.png",
                caption="../report/examples.rst",
                category="Ridge",
                subcategory=labels,
                labels={"figure": "examples per class", "labels": labels},
            )
            for labels in config["labels"]
        ],
    log:
        "logs/render_report/report.log",
    benchmark:
        "benchmarks/render_report/report.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        labels=config["labels"],
        feature_sets=get_feature_sets(),
        config=reported_config(config),
        rotated_dir=get_rotated_dir,
    script:
        "../scripts/render_report.py"
