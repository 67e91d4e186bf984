"""Adapter for rules unpack_oath and unpack_inception_v4: safe extraction of an archive."""

import os

from oath.dataset.unpack import unpack_expecting
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
if "folder" in snakemake.output.keys():  # the OATH tarball: unpack into the declared folder
    unpack_expecting(snakemake.input.archive, snakemake.output.folder, [])
else:  # the checkpoint: unpack beside the declared file, which the archive must hold
    weights = snakemake.output.weights
    unpack_expecting(snakemake.input.archive, os.path.dirname(weights), [weights])
