# Rotation by the OATH angle, one job per shard, each writing a manifest of its rotated images
# (what extraction reads). Each rotated image is its own declared output, but a job per image
# would cost Snakemake's scheduler minutes at OATH scale (5,824 jobs), so one rule is defined
# per shard (the picNum ranges extraction uses): a changed image or angle reruns its own
# shard's rotation and extraction only.

for shard, rows in SHARDS.items():

    rule:
        name:
            f"rotate_shard_{shard.replace('-', '_')}"
        input:
            images=get_source_images(rows),
        output:
            manifest=f"results/rotated/shards/{shard}.txt",
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


if is_oath_download():

    # Before the OATH tarball is unpacked its table is unknown, so the first run plans one
    # generic job per shard (shards from oath.n_images); the rotated images it writes are the
    # ones the per-shard rules above declare on every later run.
    rule rotate_shard:
        input:
            images=get_downloaded_shard_images,
        output:
            manifest="results/rotated/shards/{shard}.txt",
        log:
            "logs/rotate_shard/{shard}.log",
        group:
            "shard"
        conda:
            "../envs/rotate.yaml"
        resources:
            mem_mb=500,
            runtime=15,
        params:
            angles=get_downloaded_shard_angles,
        script:
            "../scripts/rotate_shard.py"
