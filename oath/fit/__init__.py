"""Classifiers on the features: the published ridge, the comparison beyond it, the saved model.

- :mod:`~oath.fit.ridge`: ``RidgeClassifier(alpha=0.03)`` on one split, the alpha sweep.
- :mod:`~oath.fit.published`: the paper's numbers; our features against its ``auroral_feat.h5``.
- :mod:`~oath.fit.protocols`: which rows train and test under the published and grouped splits.
- :mod:`~oath.fit.classifiers`: the linear classifiers compared and their model selection.
- :mod:`~oath.fit.comparison`: classifiers x split protocols x feature sets (same-night leakage).
- :mod:`~oath.fit.model`: the ridge trained once for ``classify`` and saved as plain arrays.
"""
