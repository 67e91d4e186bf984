"""The examples in the docstrings of the functions users call from Python run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "oath.dataset.splits",
    "oath.dataset.table",
    "oath.archive.inventory",
    "oath.fit.ridge",
    "oath.imaging.png",
    "oath.network.device",
    "oath.demo.classify_run",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
