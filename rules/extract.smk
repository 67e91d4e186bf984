# Inception-v4 Logits and PreLogitsFlatten (one forward pass): the demo checkpoint, one
# extraction job per shard, and the merge into the published auroral_feat.h5 layout.


rule make_demo_checkpoint:
    output:
        index=f"{DEMO_CHECKPOINT}.index",
        data=f"{DEMO_CHECKPOINT}.data-00000-of-00001",
    log:
        "logs/make_demo_checkpoint/checkpoint.log",
    benchmark:
        "benchmarks/make_demo_checkpoint/checkpoint.tsv"
    conda:
        "../envs/extract.yaml"
    resources:
        mem_mb=3000,  # graph plus 46 M float32 values, written once
        runtime=10,
    params:
        seed=config["demo_checkpoint_seed"],
    script:
        "../scripts/make_demo_checkpoint.py"


rule extract_shard:
    input:
        manifest="results/rotated/shards/{shard}.txt",
        weights=get_checkpoint_files(),
    output:
        features="results/features/shards/{shard}.h5",
    log:
        "logs/extract_shard/{shard}.log",
    benchmark:
        "benchmarks/extract_shard/{shard}.tsv"
    group:
        "shard"
    conda:
        "../envs/extract.yaml"
    # One thread a shard, shards side by side: the network alone ran 0.157 s an image that way
    # on a 2-core EPYC against 0.177 for one shard on two threads, and a job's single-threaded
    # start-up (imports, the cached graph's import, restore) runs beside another shard's work
    # (bench/bench_workflow.py). TensorFlow's CPU pool still has one thread a core whatever
    # this says (bench/bench_threads.py): a lone shard (one changed image) computes on both.
    threads: 1
    resources:
        mem_mb=3072,  # measured peak 1.2 GiB for a 512-image shard, batch 16
        runtime=30,  # AVX2 EPYC: 0.17 s an image alone, ~0.4-0.5 beside another shard: ~4 min
    params:
        rotated_dir=get_rotated_dir,
        weights=get_weights_description(),
        random_weights=is_random_checkpoint(),
        precision=config["precision"],
        backend=config["network"]["backend"],
        batch_size=config["batch_size"],
        gpu_batch_size=config["gpu_batch_size"],
    script:
        "../scripts/extract_shard.py"


rule merge_features:
    input:
        shards=get_shard_features(),
    output:
        features="results/features/auroral_feat.h5",
    log:
        "logs/merge_features/merge.log",
    benchmark:
        "benchmarks/merge_features/merge.tsv"
    conda:
        "../envs/extract.yaml"
    resources:
        mem_mb=1000,  # 5,824 x 1001 float32 is 23 MB
        runtime=5,
    script:
        "../scripts/merge_features.py"


rule compare_features:
    input:
        ours="results/features/auroral_feat.h5",
        published=get_published_features,
    output:
        comparison="results/features/comparison_with_published.json",
    log:
        "logs/compare_features/comparison.log",
    benchmark:
        "benchmarks/compare_features/comparison.tsv"
    conda:
        "../envs/extract.yaml"
    resources:
        mem_mb=1000,  # two 5,824 x 1001 float32 matrices
        runtime=5,
    script:
        "../scripts/compare_features.py"
