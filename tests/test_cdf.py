"""oath.archive.cdf: THEMIS L1 ASF CDF files read like stream0 files, synthetic writer, bad
input."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from oath.archive.cdf import (
    EPOCH_1970_MS,
    iter_asf_cdf,
    parse_asf_name,
    read_asf_cdf,
    write_synthetic_asf_cdf,
)
from oath.archive.conversion import frame_to_oath
from oath.archive.themis import ThemisError, input_kind, prepare_images, read_frames

cdflib = pytest.importorskip("cdflib")
pytest.importorskip("pyucalgarysrs")
# The stream0 writer of tests/test_themis.py (archive header lines); switch to a shared
# writer in oath/ once there is one.
from oath.demo.stream0 import stream0_bytes  # noqa: E402

SITE = "gako"
NAME = "thg_l1_asf_gako_2011010617_v01.cdf"
START = dt.datetime(2011, 1, 6, 17, 0, 0, 53000)  # a real file's first epoch (ms)
TIMES = [START + dt.timedelta(seconds=3 * k) for k in range(3)]


@pytest.fixture(scope="module")
def file_order_frames() -> list[np.ndarray]:
    """Frames as the stream0 PGM stores them (first row first), each with a marked corner."""
    rng = np.random.RandomState(17)
    frames = []
    for k in range(3):
        frame = rng.randint(3000, 12000, size=(256, 256)).astype(np.uint16)
        frame[10:20, 10:40] = 60000 - k  # a bright bar near the file's first row, left side
        frames.append(frame)
    return frames


def write_stream0(path: Path, frames: list[np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(stream0_bytes(frames, site=SITE, start=START), compresslevel=1))
    return path


def write_cdf(path: Path, variables: dict[str, tuple[int, list[int], bool, np.ndarray]]) -> Path:
    """A CDF with just the given variables: name -> (type, dims, record-varying, data)."""
    from cdflib.cdfwrite import CDF

    path.parent.mkdir(parents=True, exist_ok=True)
    cdf = CDF(str(path), cdf_spec={"Majority": "row_major"})
    for name, (kind, dims, rec_vary, data) in variables.items():
        spec = {"Variable": name, "Data_Type": kind, "Num_Elements": 1}
        cdf.write_var({**spec, "Rec_Vary": rec_vary, "Dim_Sizes": dims}, var_data=data)
    cdf.close()
    return path


def epochs(times: list[dt.datetime]) -> np.ndarray:
    return np.array(
        [EPOCH_1970_MS + (t - dt.datetime(1970, 1, 1)).total_seconds() * 1e3 for t in times]
    )


def test_synthetic_file_reads_back(tmp_path, file_order_frames):
    path = write_synthetic_asf_cdf(tmp_path / NAME, file_order_frames, TIMES, SITE)
    assert input_kind(path) == "cdf"
    assert parse_asf_name(path) == (dt.datetime(2011, 1, 6, 17), SITE)
    frames = read_frames(path)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.timestamp for f in frames] == TIMES
    assert {f.site for f in frames} == {SITE}
    for frame, written in zip(frames, file_order_frames, strict=True):
        assert frame.image.dtype == np.uint16 and frame.image.shape == (256, 256)
        np.testing.assert_array_equal(frame.image, written)


def test_synthetic_file_has_the_real_layout(tmp_path, file_order_frames):
    """Variables, types and the stored orientation of thg_l1_asf_gako_2011010617_v01.cdf."""
    path = write_synthetic_asf_cdf(tmp_path / NAME, file_order_frames, TIMES, SITE)
    cdf = cdflib.CDF(str(path))
    info = cdf.cdf_info()
    assert info.Majority == "Row_major"
    types = {v: cdf.varinq(v).Data_Type_Description for v in info.zVariables}
    assert types == {
        "thg_asf_gako": "CDF_UINT2",
        "thg_asf_gako_column": "CDF_UINT2",
        "thg_asf_gako_row": "CDF_UINT2",
        "thg_asf_gako_time": "CDF_REAL8",
        "thg_asf_gako_tend": "CDF_REAL8",
        "thg_asf_gako_epoch": "CDF_EPOCH",
        "thg_asf_gako_epoch0": "CDF_EPOCH",
    }
    assert cdf.varinq("thg_asf_gako").Dim_Sizes == [256, 256]
    assert cdf.varattsget("thg_asf_gako")["DEPEND_0"] == "thg_asf_gako_epoch"
    assert cdf.varattsget("thg_asf_gako_epoch")["FUNCT"] == "comp_themis_epoch"
    assert float(cdf.varget("thg_asf_gako_epoch0")) == 62167219200000.0
    assert cdf.globalattsget()["Logical_file_id"] == ["thg_l1_asf_gako_2011010617_v01"]
    stored = cdf.varget("thg_asf_gako")
    np.testing.assert_array_equal(stored[1], file_order_frames[1][::-1, ::-1])
    assert cdflib.cdfepoch.to_datetime(cdf.varget("thg_asf_gako_epoch"))[0] == np.datetime64(START)


def test_times_from_epoch0_and_time_when_epoch_has_no_records(tmp_path, file_order_frames):
    path = write_synthetic_asf_cdf(
        tmp_path / NAME, file_order_frames, TIMES, SITE, epoch_records=False
    )
    assert cdflib.CDF(str(path)).varinq("thg_asf_gako_epoch").Last_Rec == -1
    assert [f.timestamp for f in read_asf_cdf(path)] == TIMES


def test_frames_read_in_chunks_are_the_same(tmp_path, file_order_frames):
    path = write_synthetic_asf_cdf(tmp_path / NAME, file_order_frames, TIMES, SITE)
    chunked = list(iter_asf_cdf(path, chunk=2))
    assert [f.index for f in chunked] == [0, 1, 2]
    for frame, written in zip(chunked, file_order_frames, strict=True):
        np.testing.assert_array_equal(frame.image, written)


def test_site_from_the_variable_when_the_file_is_renamed(tmp_path, file_order_frames):
    path = write_synthetic_asf_cdf(tmp_path / NAME, file_order_frames[:1], TIMES[:1], SITE)
    renamed = shutil.copy(path, tmp_path / "my_hour.cdf")
    (frame,) = read_frames(renamed)
    assert frame.site == SITE and frame.timestamp == START


def test_both_archives_give_the_same_frames_and_images(tmp_path, file_order_frames):
    """The same frames as a stream0 minute file and as an L1 CDF: identical OATH-like PNGs."""
    stream0 = write_stream0(
        tmp_path / "in" / "20110106_1700_gako_themis20_full.pgm.gz", file_order_frames
    )
    from_stream0 = read_frames(stream0)
    # the documented relation between the archives: CDF frame = stream0 file rows, mirrored
    cdf_path = write_cdf(
        tmp_path / "in" / NAME,
        {
            "thg_asf_gako": (
                12,
                [256, 256],
                True,
                np.stack([f[:, ::-1] for f in file_order_frames]),
            ),
            "thg_asf_gako_epoch": (31, [], True, epochs(TIMES)),
        },
    )
    from_cdf = read_frames(cdf_path)
    assert len(from_cdf) == len(from_stream0) == 3
    for a, b in zip(from_stream0, from_cdf, strict=True):
        np.testing.assert_array_equal(a.image, b.image)  # same way up
        assert a.site == b.site == SITE and a.index == b.index
        assert abs(a.timestamp - b.timestamp) < dt.timedelta(milliseconds=1)
        np.testing.assert_array_equal(frame_to_oath(a.image), frame_to_oath(b.image))
    # the marked bar: file rows 10-19 are the last rows of the oriented frame, left side
    assert (from_cdf[0].image[236:246, 10:40] >= 59998).all()

    manifest = prepare_images([tmp_path / "in"], tmp_path / "png", site_angles={SITE: 30})
    assert (manifest["status"] == "ok").all() and len(manifest) == 6
    pngs = dict(zip(manifest["png"].map(lambda p: Path(p).name), manifest["png"], strict=True))
    for k in range(3):
        cdf_png = Path(pngs[f"thg_l1_asf_gako_2011010617_v01_f0{k}.png"]).read_bytes()
        stream0_png = Path(pngs[f"20110106_1700_gako_themis20_full_f0{k}.png"]).read_bytes()
        assert cdf_png == stream0_png  # identical inputs to Inception-v4: identical Logits


def bad_files(folder: Path, frames: list[np.ndarray]) -> dict[str, str]:
    """Broken CDFs -> the words their failure must contain."""
    good = write_synthetic_asf_cdf(
        folder / "thg_l1_asf_fykn_2013041408_v01.cdf", frames, TIMES, "fykn"
    )
    data = good.read_bytes()
    (folder / "thg_l1_asf_fykn_2013041409_v01.cdf").write_bytes(data[: len(data) // 2])
    (folder / "thg_l1_asf_fykn_2013041410_v01.cdf").write_text("<html>404 Not Found</html>")
    damaged = bytearray(data)
    middle = len(data) // 2  # inside the gzip-compressed frames
    damaged[middle : middle + 400] = bytes(400)
    (folder / "thg_l1_asf_fykn_2013041414_v01.cdf").write_bytes(bytes(damaged))
    stack = np.stack(frames)
    write_cdf(  # frames but no times
        folder / "thg_l1_asf_fykn_2013041411_v01.cdf",
        {"thg_asf_fykn": (12, [256, 256], True, stack)},
    )
    write_cdf(  # times of another site only
        folder / "thg_l1_asf_fykn_2013041412_v01.cdf",
        {"thg_asf_gill_epoch": (31, [], True, epochs(TIMES))},
    )
    write_cdf(  # three frames, two times
        folder / "thg_l1_asf_fykn_2013041413_v01.cdf",
        {
            "thg_asf_fykn": (12, [256, 256], True, stack),
            "thg_asf_fykn_epoch": (31, [], True, epochs(TIMES[:2])),
        },
    )
    return {
        "thg_l1_asf_fykn_2013041409_v01.cdf": "truncated",
        "thg_l1_asf_fykn_2013041410_v01.cdf": "not a CDF file",
        "thg_l1_asf_fykn_2013041411_v01.cdf": "no frame times",
        "thg_l1_asf_fykn_2013041412_v01.cdf": "no variable thg_asf_fykn",
        "thg_l1_asf_fykn_2013041413_v01.cdf": "3 frames in thg_asf_fykn but 2 frame times",
        "thg_l1_asf_fykn_2013041414_v01.cdf": "cannot read frames 0-2",
    }


def test_bad_files_raise_naming_the_file(tmp_path, file_order_frames):
    for name, words in bad_files(tmp_path, file_order_frames).items():
        with pytest.raises(ThemisError) as caught:
            read_frames(tmp_path / name)
        assert str(caught.value).startswith(f"{tmp_path / name}: ")
        assert words in str(caught.value)


def test_bad_files_are_listed_as_failed_and_the_others_classified(tmp_path, file_order_frames):
    inbox = tmp_path / "inbox"
    expected = bad_files(inbox, file_order_frames)
    write_stream0(inbox / "20110106_1700_gako_themis20_full.pgm.gz", file_order_frames[:2])
    manifest = prepare_images([inbox], tmp_path / "png")
    by_name = {Path(f).name: part for f, part in manifest.groupby("file")}
    good = by_name["thg_l1_asf_fykn_2013041408_v01.cdf"]
    assert (good["status"] == "ok").all() and good["frame"].tolist() == [0, 1, 2]
    assert good["timestamp"].iloc[2] == "2011-01-06T17:00:06.053000Z"
    assert (by_name["20110106_1700_gako_themis20_full.pgm.gz"]["status"] == "ok").all()
    for name, words in expected.items():
        (row,) = by_name[name].itertuples()
        assert row.status.startswith("failed: ") and words in row.status
        assert row.png == "" and str(tmp_path) not in row.status  # path is in the file column
