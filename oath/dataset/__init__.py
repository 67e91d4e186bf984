"""The data set: what the workflow classifies and how it is split.

- :mod:`~oath.dataset.table`: read and check a folder in the OATH layout (classifications.csv).
- :mod:`~oath.dataset.splits`: the published split recipe, the split file, one split's rows.
- :mod:`~oath.dataset.origins`: each image's station-night, from ``images/files_origin.csv``.
- :mod:`~oath.dataset.source`: the configured data set as the workflow plans it (folder, images,
  shards, rotated names).
- :mod:`~oath.dataset.download`, :mod:`~oath.dataset.unpack`: fetch and safely unpack the OATH
  tarball and the Inception-v4 checkpoint.
"""
