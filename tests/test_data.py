"""The OATH-layout loader: what it accepts, and the errors it gives for bad input."""

from __future__ import annotations

import pytest

from oath.dataset.splits import SplitError
from oath.dataset.table import (
    DatasetError,
    load_classifications,
    load_dataset,
    pic_num_of,
    rotated_name,
)


def csv_path(root):
    return root / "classifications" / "classifications.csv"


def edit_csv(root, old, new):
    path = csv_path(root)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def data_lines(root):
    lines = csv_path(root).read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class2"))
    return lines, header


def test_loads_the_layout_with_its_18_comment_lines(dataset):
    assert csv_path(dataset).read_text().splitlines()[18].startswith("class2,class6,picNum")
    loaded = load_dataset(dataset)
    assert len(loaded.table) == 24
    assert list(loaded.table.columns) == ["class2", "class6", "picNum", "label", "angle"]
    assert loaded.table.attrs == {"angle_column": "angle", "skipped_lines": 18}
    assert loaded.split_file is not None and loaded.files_origin is not None
    assert set(loaded.table["class6"]) == set(range(6))


def test_accepts_rotang_seed_page_folder_and_other_comment_counts(dataset):
    lines, header = data_lines(dataset)
    lines[header] = lines[header].replace("angle", "rotAng")
    body = ["# a shorter comment block", "", *lines[header:]]
    (dataset / "classifications").rename(dataset / "classification")
    (dataset / "classification" / "classifications.csv").write_text("\n".join(body) + "\n")
    loaded = load_dataset(dataset)
    assert loaded.table.attrs == {"angle_column": "rotAng", "skipped_lines": 2}
    assert loaded.classifications.parent.name == "classification"
    assert len(loaded.table) == 24


def test_angle_text_is_kept_for_the_published_file_names(dataset):
    lines, header = data_lines(dataset)
    first = lines[header + 1].split(",")
    first[-1] = "12.5"
    lines[header + 1] = ",".join(first)
    csv_path(dataset).write_text("\n".join(lines) + "\n")
    table = load_classifications(csv_path(dataset))
    assert table.loc[0, "angle"] == "12.5"
    assert rotated_name(table.loc[0, "picNum"], "12.5") == "00001_12.5.png"
    assert pic_num_of("00001_12.5.png") == 1


def test_missing_image_names_the_image_and_the_file(dataset):
    (dataset / "images" / "cropped_scaled" / "00005.png").unlink()
    with pytest.raises(DatasetError, match=r"classifications\.csv.*00005\.png"):
        load_dataset(dataset)


def test_duplicate_picnum_names_the_line(dataset):
    lines, header = data_lines(dataset)
    lines.append(lines[header + 3])
    csv_path(dataset).write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetError,
        match=rf"classifications\.csv: line\(s\) {len(lines)}: "
        "duplicate picNum",
    ):
        load_dataset(dataset)


@pytest.mark.parametrize(
    "column, value, message",
    [
        (1, "7", "class6 is outside 0..5"),
        (0, "2", "class2 is outside 0..1"),
        (1, "x", "class6 is not a whole number"),
    ],
)
def test_class_out_of_range_names_the_line(dataset, column, value, message):
    lines, header = data_lines(dataset)
    fields = lines[header + 2].split(",")
    fields[column] = value
    lines[header + 2] = ",".join(fields)
    csv_path(dataset).write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"line\(s\) {header + 3}: {message}"):
        load_dataset(dataset)


def test_missing_column_says_what_was_expected(dataset):
    edit_csv(dataset, "class2,class6,picNum,label,angle", "class2,class6,picNum,label,rotation")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) angle \(or rotAng\)"):
        load_dataset(dataset)


def test_split_row_that_is_not_a_permutation_names_file_and_row(dataset):
    split_file = dataset / "classifications" / "train_test_split.csv"
    rows = split_file.read_text().splitlines()
    third = rows[2].split(",")
    third[0] = third[1]  # one index twice, another missing
    rows[2] = ",".join(third)
    split_file.write_text("\n".join(rows) + "\n")
    with pytest.raises(SplitError, match=r"train_test_split\.csv: row 3 is not a permutation"):
        load_dataset(dataset)


def test_missing_folder_says_how_to_fix(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no classifications/classifications.csv"):
        load_dataset(tmp_path)
