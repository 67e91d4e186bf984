# Downloads of the published OATH tarball and Inception-v4 checkpoint: resumable, checksummed
# when the config gives a SHA-256, run on the submitting host (cluster nodes are often offline).


rule download_archive:
    output:
        archive="resources/downloads/{archive}",
    log:
        "logs/download_archive/{archive}.log",
    localrule: True
    conda:
        "../envs/rotate.yaml"  # the standard library and oath only
    params:
        url=get_download_url,
        sha256=get_download_sha256,
    script:
        "../scripts/download_archive.py"


rule unpack_inception_v4:
    input:
        archive=get_archive("inception_v4"),
    output:
        weights=PUBLISHED_CHECKPOINT,
    log:
        "logs/unpack_inception_v4/checkpoint.log",
    conda:
        "../envs/extract.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../scripts/unpack_archive.py"
