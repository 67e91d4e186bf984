"""The offline demo: deterministic, in the OATH layout, and classes a person would tell apart."""

from __future__ import annotations

import hashlib

import numpy as np
from wand.image import Image

from oath.dataset.splits import load_split
from oath.dataset.table import load_dataset
from oath.demo.dataset import DRAW, _Sky, demo_origins, demo_table, draw_sky, write_demo_dataset


def digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    write_demo_dataset(tmp_path / "a", n_images=12, seed=5, image_size=48)
    write_demo_dataset(tmp_path / "b", n_images=12, seed=5, image_size=48)
    write_demo_dataset(tmp_path / "c", n_images=12, seed=6, image_size=48)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_layout_is_oath_and_readable_by_imagemagick(demo_template):
    dataset = load_dataset(demo_template)
    assert dataset.table.attrs["skipped_lines"] == 18
    assert "SYNTHETIC" in dataset.classifications.read_text().splitlines()[0]
    assert load_split(dataset.split_file, 24).shape == (5, 24)
    with Image(filename=str(dataset.image_path(1))) as img:
        assert img.size == (64, 64)
    counts = dataset.table["class6"].value_counts()
    assert set(counts.index) == set(range(6)) and counts.min() == 4
    assert (dataset.table["class2"] == (dataset.table["class6"] >= 3)).all()


def test_table_is_known_before_any_pixel_is_drawn(demo_template):
    on_disk = load_dataset(demo_template).table
    planned = demo_table(24, 7)
    assert on_disk[["class2", "class6", "picNum", "label", "angle"]].equals(planned)


def test_origins_put_several_images_on_one_station_night():
    origins = demo_origins(demo_table(120, 3), 3)
    nights = origins.groupby(["station", origins["time"].str[:10]]).size()
    assert len(nights) < 60 and nights.max() >= 3


def draw(class6, n=6, size=128):
    return [draw_sky(class6, np.random.RandomState([11, class6, k]), size) for k in range(n)]


def test_field_of_view_is_round_and_black_outside():
    for class6 in range(6):
        img = draw(class6, n=1)[0]
        assert img[0, 0] == img[0, -1] == img[-1, 0] == img[-1, -1] == 0
        assert img[64, 64] > 0


def test_classes_have_their_signatures():
    mean = {c: np.mean([img[img > 0].mean() for img in draw(c)]) for c in range(6)}
    saturated = {c: np.mean([(img >= 250).mean() for img in draw(c)]) for c in range(6)}
    # clear sky is the darkest; clouds and diffuse glow lift the whole sky
    assert mean[5] == min(mean.values())
    assert mean[3] > mean[5] + 20 and mean[1] > mean[5] + 5
    # the moon saturates a small disk; in clear and cloudy skies only a few star pixels do
    assert saturated[4] > 0.001 and saturated[4] > 5 * max(saturated[5], saturated[3])


def emission(class6, n=6, size=128):
    """The class's own light, without stars, airglow or noise."""
    return [DRAW[class6](_Sky(size, np.random.RandomState([13, class6, k]))) for k in range(n)]


def steepest(img):
    return max(np.abs(np.diff(img, axis=0)).max(), np.abs(np.diff(img, axis=1)).max())


def test_arcs_are_sharp_bands_and_diffuse_light_is_smooth():
    for arc in emission(0):
        assert steepest(arc) > 40  # sharp edges, a few pixels wide
        assert 0.005 < (arc > 50).mean() < 0.3  # a band, not the whole sky
    for glow in emission(1):
        assert steepest(glow) < 5  # no edges at all
        assert (glow > 10).mean() > 0.2  # large patches
    for forms in emission(2):
        assert steepest(forms) > 40 and (forms > 50).mean() < 0.4
