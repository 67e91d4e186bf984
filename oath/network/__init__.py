"""Inception-v4: the network, its weights, where it runs, and the feature files it fills.

- :mod:`~oath.network.inception_v4`: the TF-slim network in inference mode, its cached graph and
  the reference preprocessing.
- :mod:`~oath.network.checkpoint`: find, hash and check checkpoints; the demo's random weights.
- :mod:`~oath.network.device`: CPU or GPU, batch size, the device in words for provenance.
- :mod:`~oath.network.features`: extraction per shard and the merge into ``auroral_feat.h5``.
- :mod:`~oath.network.featurefile`: the published feature-file layout plus our provenance.
- :mod:`~oath.network.reuse`: the batches of a shard that a rerun keeps from its last extraction.
- :mod:`~oath.network._tf_compat`: tf-slim 1.1.0 on TensorFlow 2.21 (tf_keras), memory settings.
"""
