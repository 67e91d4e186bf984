"""Labelling archives of new all-sky frames: read, convert, classify in shards, gather.

- :mod:`~oath.archive.frames`: the :class:`~oath.archive.frames.Frame` every reader returns.
- :mod:`~oath.archive.themis`: raw THEMIS stream0 files and PNG/JPEG as frames, and the
  raw-to-OATH conversion.
- :mod:`~oath.archive.cdf`: THEMIS Level-1 ASF CDF hour files as frames.
- :mod:`~oath.archive.inventory`: the run's list of input files and their stable shard keys.
- :mod:`~oath.archive.feed`: a shard's frames read, converted and rotated (a file's frames in
  one sparse product) on a thread ahead of the network.
- :mod:`~oath.archive.stream`: one shard in one process: read, convert, Inception-v4, ridge,
  Parquet.
- :mod:`~oath.archive.gather`: the shards gathered into a dataset, a CSV and summary pictures.
"""
