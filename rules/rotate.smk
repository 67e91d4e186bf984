# Rotation by the OATH angle, one job per shard. Each rotated image is its own declared output,
# but a job per image would cost Snakemake's scheduler minutes at OATH scale (5,824 jobs), so
# one rule is defined per shard (the picNum ranges extraction uses): a changed image or angle
# reruns its own shard's rotation and extraction only.

for shard, rows in SHARDS.items():

    rule:
        name:
            f"rotate_shard_{shard.replace('-', '_')}"
        input:
            images=get_source_images(rows),
        output:
            rotated=get_rotated_paths(rows),
        log:
            f"logs/rotate_shard/{shard}.log",
        group:
            "shard"
        conda:
            "../envs/rotate.yaml"
        resources:
            mem_mb=500,  # one small image in memory at a time
            runtime=15,  # ~20 ms an image: 256 images take seconds
        params:
            angles=list(rows["angle"]),
        script:
            "../scripts/rotate_shard.py"
