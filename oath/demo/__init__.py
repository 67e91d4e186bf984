"""Synthetic data made offline, for the default demo run, the tests and the benchmarks.

- :mod:`~oath.demo.dataset`: a demo data set in exactly the OATH layout, with the raw frames its
  PNGs were made from (through the archive's conversion).
- :mod:`~oath.demo.stream0`: raw THEMIS ASI files in the real stream0 format.
- :mod:`~oath.demo.classify_run`: a classify run's Parquet dataset at any size, random scores.
"""
