"""Config schema and the data-set plan the workflow builds its jobs from."""

from __future__ import annotations

import pytest
import yaml

from oath.config import resolve_dataset, shard_of, shard_table, validate_config
from oath.data import DatasetError

from .conftest import REPO


def test_repository_config_is_valid_and_complete():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert validate_config(config) == config  # every key present: the defaults add nothing


@pytest.mark.parametrize(
    "config, key",
    [
        ({"ridge": {"alpah": 0.1}}, "ridge"),
        ({"shard_sise": 3}, r"\(top level\)"),
        ({"precision": "float16"}, "precision"),
        ({"ridge": {"train_fraction": 1.5}}, "ridge/train_fraction"),
        ({"labels": ["class7"]}, "labels/0"),
    ],
)
def test_typos_and_bad_values_name_the_key(config, key):
    with pytest.raises(ValueError, match=f"config key {key}"):
        validate_config(config)


def test_shards_are_stable_picnum_ranges(demo_template):
    assert shard_of(1, 256) == "00000-00255" and shard_of(256, 256) == "00256-00511"
    config = validate_config({"dataset": str(demo_template), "shard_size": 10})
    table = resolve_dataset(config).table
    shards = shard_table(table, 10)
    assert list(shards) == ["00000-00009", "00010-00019", "00020-00029"]
    assert sum(len(rows) for rows in shards.values()) == len(table)
    # dropping an image changes its own shard only
    fewer = shard_table(table[table["picNum"] != 15], 10)
    assert fewer["00000-00009"].equals(shards["00000-00009"])
    assert fewer["00020-00029"].equals(shards["00020-00029"])


def test_demo_plan_exists_before_the_demo_is_drawn(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = resolve_dataset(validate_config({"demo": {"n_images": 30}}))
    assert plan.is_demo and len(plan.table) == 30 and not plan.classifications.exists()
    with pytest.raises(DatasetError, match="n_splits"):
        resolve_dataset(validate_config({"ridge": {"n_splits": 6}}))


def test_a_data_set_without_split_file_gets_one_planned(dataset):
    (dataset / "classifications" / "train_test_split.csv").unlink()
    plan = resolve_dataset(validate_config({"dataset": str(dataset)}))
    assert plan.split_is_generated
    assert str(plan.split_file) == "results/splits/train_test_split.csv"
