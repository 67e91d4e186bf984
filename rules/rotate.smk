# Rotation by the OATH angle, one job per shard (the picNum ranges extraction uses), each
# writing its images under their published names and, last, a manifest of them: the manifest
# is what extraction reads and the rule's one declared output. A changed image reruns its shard
# (newer input), a changed angle too (new names and angles: params); a job per image would cost
# Snakemake's scheduler minutes at OATH scale (5,824 jobs).


rule rotate_shard:
    input:
        images=get_shard_images,
    output:
        manifest="results/rotated/shards/{shard}.txt",
    log:
        "logs/rotate_shard/{shard}.log",
    benchmark:
        "benchmarks/rotate_shard/{shard}.tsv"
    # Every rotation before any extraction: a rotation job beside a network job slowed the
    # network by ~40% on a 2-core EPYC (memory-bound), so the run is faster with the two apart
    # (bench/bench_workflow.py).
    priority: 10
    group:
        "shard"
    conda:
        "../envs/rotate.yaml"
    resources:
        mem_mb=500,  # one small image in memory at a time
        runtime=15,  # ~60 ms an image with start-up: 512 images in ~30 s
    params:
        angles=get_shard_angles,
        rotated=get_shard_rotated,
    script:
        "../scripts/rotate_shard.py"
