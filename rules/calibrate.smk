# Calibrate the raw-frame -> OATH-image conversion against the data set's own images: match
# every image to its raw frame (files_origin.csv), fit the conversion per site on split 0's
# training part, then label split 0's held-out images from their PNGs and from their raw
# frames (fitted and default conversion) with classify's streamed extraction.


rule fetch_raw_frames:
    input:
        origins=get_calibration_origins,
        classifications=get_classifications_file,
    output:
        listing=FETCHED_RAW_LISTING,
    log:
        "logs/fetch_raw_frames/listing.log",
    benchmark:
        "benchmarks/fetch_raw_frames/listing.tsv"
    conda:
        "../envs/classify.yaml"
    params:
        folder=get_fetched_raw_dir,
        api_base_url=config["calibrate"]["api_base_url"],
        tolerance_s=config["calibrate"]["tolerance_s"],
    script:
        "../scripts/fetch_raw_frames.py"


rule match_raw_frames:
    input:
        origins=get_calibration_origins,
        classifications=get_classifications_file,
        raw=get_raw_image_files,
    output:
        matches="results/calibration/matches.csv",
        frames="results/calibration/frames.h5",
    log:
        "logs/match_raw_frames/matches.log",
    benchmark:
        "benchmarks/match_raw_frames/matches.tsv"
    conda:
        "../envs/classify.yaml"
    resources:
        mem_mb=1000,  # a few raw files at a time; matched frames go to frames.h5 as they come
        runtime=60,  # 5,824 images: one raw file read per image at most (~0.1 s each)
    params:
        raw_images=get_raw_images,
        tolerance_s=config["calibrate"]["tolerance_s"],
    script:
        "../scripts/match_raw_frames.py"


rule fit_conversion:
    input:
        matches="results/calibration/matches.csv",
        frames="results/calibration/frames.h5",
        classifications=get_classifications_file,
        split=get_split_file,
        images=get_dataset_images,
    output:
        conversion="results/calibration/conversion.yaml",
        fit="results/calibration/fit.json",
        triplets="results/calibration/triplets.png",
    log:
        "logs/fit_conversion/conversion.log",
    benchmark:
        "benchmarks/fit_conversion/conversion.tsv"
    conda:
        "../envs/classify.yaml"
    resources:
        mem_mb=2000,  # every matched frame and PNG of one site at once (~0.2 MB an image)
        runtime=60,
    params:
        images_dir=get_images_dir,
        train_fraction=config["ridge"]["train_fraction"],
        base=get_new_image_conversion(),
        max_shift=config["calibrate"]["max_shift"],
    script:
        "../scripts/fit_conversion.py"


rule measure_agreement:
    input:
        matches="results/calibration/matches.csv",
        frames="results/calibration/frames.h5",
        fit="results/calibration/fit.json",
        origins=get_calibration_origins,
        features="results/features/auroral_feat.h5",
        classifications=get_classifications_file,
        split=get_split_file,
        weights=get_checkpoint_files(),
    output:
        calibration="results/calibration/calibration.json",
        model="results/calibration/model_split0.npz",
    log:
        "logs/measure_agreement/calibration.log",
    benchmark:
        "benchmarks/measure_agreement/calibration.tsv"
    conda:
        "../envs/classify.yaml"
    threads: 2
    resources:
        mem_mb=3072,  # as classify_shard: the network, and the held-out frames
        runtime=60,  # 1,747 held-out OATH images, two raw routes: ~3,500 frames at ~6 a second
    params:
        default=get_new_image_conversion(),
        labels=config["labels"],
        alpha=config["ridge"]["alpha"],
        train_fraction=config["ridge"]["train_fraction"],
        layer=config["features"],
        provenance={"dataset": config["dataset"], "weights": get_weights_description()},
        precision=config["precision"],
        batch_size=config["batch_size"],
    script:
        "../scripts/measure_agreement.py"


rule render_calibration_report:
    input:
        calibration="results/calibration/calibration.json",
        triplets="results/calibration/triplets.png",
    output:
        html="results/calibration/report.html",
        markdown="results/calibration/summary.md",
    log:
        "logs/render_calibration_report/report.log",
    benchmark:
        "benchmarks/render_calibration_report/report.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/render_calibration_report.py"
