"""Config schema and the data source the workflow builds its jobs from."""

from __future__ import annotations

import pytest
import yaml

from oath.config import validate_config
from oath.dataset.source import DataSource, resolve_dataset, shard_of, shard_table
from oath.dataset.table import DatasetError

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
        ({"features": "PreLogits"}, "features"),
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


def never_unpacked():
    raise AssertionError("a folder data set must not wait for a download")


def test_data_source_names_a_shards_images_angles_and_rotated_files(dataset, tmp_path):
    source = DataSource(validate_config({"dataset": str(dataset), "shard_size": 8}), never_unpacked)
    assert not source.is_download and source.shard_names == [
        "00000-00007",
        "00008-00015",
        "00016-00023",
        "00024-00031",
    ]
    table = source.plan.table.set_index("picNum")
    images = source.shard_images("00008-00015")
    assert images[0] == str(dataset / "images" / "cropped_scaled" / "00008.png")
    assert source.shard_angles("00008-00015")[0] == table.loc[8, "angle"]
    assert (
        source.shard_rotated("00008-00015")[0]
        == f"results/rotated/00008_{table.loc[8, 'angle']}.png"
    )
    assert source.files_origin() == {"files_origin": str(dataset / "images" / "files_origin.csv")}
    assert source.feature_sets() == ["extracted"]  # the folder ships no published features
    with pytest.raises(DatasetError, match="no image falls in shard 00040-00047"):
        source.shard_images("00040-00047")


def test_download_plans_shards_before_the_tarball_and_reads_it_after(
    tmp_path, monkeypatch, dataset
):
    monkeypatch.chdir(tmp_path)
    unpacked = []
    config = validate_config({"dataset": "oath", "shard_size": 10, "oath": {"n_images": 30}})
    source = DataSource(config, lambda: unpacked[0])
    assert source.is_download and source.shard_names == [
        "00000-00009",
        "00010-00019",
        "00020-00029",
        "00030-00039",
    ]
    assert source.feature_sets() == ["extracted", "published"]
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "oath").symlink_to(dataset)
    unpacked.append("resources/oath")
    assert source.classifications().endswith("classifications/classifications.csv")
    assert source.shard_rotated("00020-00029")[-1].startswith("results/rotated/00024_")


def test_a_lost_rotated_image_names_its_manifest_and_the_fix(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = DataSource(validate_config({"dataset": str(dataset), "shard_size": 8}), never_unpacked)
    assert len(source.checked_manifests()) == 4  # nothing rotated yet: nothing to check
    rotated = source.shard_rotated("00008-00015")
    manifest = tmp_path / "results" / "rotated" / "shards" / "00008-00015.txt"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(f"{p.split('/')[-1]}\n" for p in rotated))
    for path in rotated[1:]:
        (tmp_path / path).write_bytes(b"png")
    with pytest.raises(DatasetError, match=r"00008-00015.txt: lists .*gone.*Delete that manifest"):
        source.checked_manifests()
    (tmp_path / rotated[0]).write_bytes(b"png")
    assert source.checked_manifests() == source.shard_manifests()
