"""Outputs are complete or absent: a writer that fails leaves the old file and no debris."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oath.atomic import atomic_path, write_json
from oath.imaging.rotate import RotationError, rotate_image
from oath.network.featurefile import Features, read_features, write_features


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "result.json"
    write_json(target, {"accuracy": 0.5})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"accuracy": 0.')  # half written, then the job dies
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_json_refuses_nan_before_touching_the_file(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(ValueError):
        write_json(target, {"accuracy": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_feature_file_and_rotation_leave_nothing_behind_on_failure(tmp_path):
    names = ["00001_10.png", "00002_20.png"]
    good = Features(names, np.ones((2, 3), np.float32), {"weights": "test"})
    write_features(tmp_path / "feat.h5", good)

    class Unprintable:
        def __str__(self):
            raise RuntimeError("attribute cannot be written")

    unwritable = Features(names, np.ones((2, 3), np.float32), {"weights": Unprintable()})
    with pytest.raises(RuntimeError):
        write_features(tmp_path / "feat.h5", unwritable)
    assert read_features(tmp_path / "feat.h5").attrs["weights"] == "test"

    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(RotationError, match="broken.png"):
        rotate_image(tmp_path / "broken.png", tmp_path / "00003_30.png", 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png", "feat.h5"]
