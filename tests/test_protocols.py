"""Split protocols and classifiers beyond the 2018 protocol, on tiny synthetic data."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import recall_score

from oath.config import validate_config
from oath.dataset import origins as origin_table
from oath.dataset.origins import ProtocolInputError
from oath.dataset.splits import make_split, write_split
from oath.dataset.table import CLASS6_NAMES
from oath.demo.dataset import demo_origins, demo_table
from oath.fit import classifiers, comparison, protocols
from oath.network.featurefile import PRELOGITS, FeatureFileError, Features, write_features
from oath.report.protocols import protocols_section

N_IMAGES, N_FEATURES, N_NIGHTS = 120, 20, 15
STATIONS = ("fsmi", "gill", "rank")


def leaky_data(seed: int = 3) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """8 near-identical frames per station-night; a night shows one class; weak class signal."""
    rng = np.random.RandomState(seed)
    night = np.repeat(np.arange(N_NIGHTS), N_IMAGES // N_NIGHTS)
    class6 = night % 6
    X = (
        3.0 * rng.randn(N_NIGHTS, N_FEATURES)[night]  # what the night looks like
        + 0.3 * rng.randn(6, N_FEATURES)[class6]  # what the class looks like
        + 0.05 * rng.randn(N_IMAGES, N_FEATURES)  # frame to frame
    ).astype(np.float32)
    order = rng.permutation(N_IMAGES)  # picNums not in night order
    X, night, class6 = X[order], night[order], class6[order]
    table = pd.DataFrame(
        {
            "class2": (class6 >= 3).astype(int),
            "class6": class6,
            "picNum": np.arange(1, N_IMAGES + 1),
            "label": [CLASS6_NAMES[c] for c in class6],
            "angle": rng.randint(0, 360, N_IMAGES),
        }
    )
    start = dt.datetime(2011, 1, 1, 3, 0)
    times = [start + dt.timedelta(days=int(n), minutes=int(rng.randint(0, 480))) for n in night]
    origins = pd.DataFrame(
        {
            "picNum": table["picNum"],
            "station": [STATIONS[n % 3] for n in night],
            "time": [t.strftime("%Y-%m-%dT%H:%M:%S") for t in times],
        }
    )
    return X, table, origins


def write_inputs(folder, X, table, origins) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "features": folder / "auroral_feat.h5",
        "classifications": folder / "classifications.csv",
        "split_file": folder / "train_test_split.csv",
        "files_origin": folder / "files_origin.csv",
    }
    names = [f"{p:05d}_{a}.png" for p, a in zip(table["picNum"], table["angle"], strict=True)]
    write_features(paths["features"], Features(names, X, {"weights": "test"}))
    paths["classifications"].write_text("# test\n#\n" + table.to_csv(index=False))
    write_split(paths["split_file"], make_split(len(table)))
    origins.to_csv(paths["files_origin"], index=False)
    return {k: str(v) for k, v in paths.items()}


def run(
    paths: dict[str, str],
    out,
    files_origin="default",
    seed=7,
    n_splits=5,
    layer="Logits",
    classifiers=classifiers.CLASSIFIERS,  # every one, the opt-in SVM included
    n_jobs=1,
) -> dict:
    comparison.compare_to_file(
        paths["features"],
        paths["classifications"],
        paths["split_file"],
        paths["files_origin"] if files_origin == "default" else files_origin,
        ["class6", "class2"],
        n_splits,
        seed,
        str(out),
        layer=layer,
        classifiers=classifiers,
        n_jobs=n_jobs,
    )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    folder = tmp_path_factory.mktemp("protocols")
    X, table, origins = leaky_data()
    paths = write_inputs(folder / "in", X, table, origins)
    result = run(paths, folder / "out" / "protocols.json")
    return {"X": X, "table": table, "paths": paths, "result": result, "folder": folder}


# --- protocols -------------------------------------------------------------------------------


def test_published_protocol_uses_the_split_file_rows_exactly(leaky):
    rows = np.loadtxt(leaky["paths"]["split_file"], delimiter=",", dtype=np.int64)
    n_train = round(0.7 * N_IMAGES)
    splits = protocols.published_splits(rows, 5)
    for i, split in enumerate(splits):
        assert split.train.tolist() == rows[i, :n_train].tolist()
        assert split.test.tolist() == rows[i, n_train:].tolist()
    # and the published ridge line is what the original script prints for those rows
    X, y = leaky["X"], leaky["table"]["class6"].to_numpy()
    acc = [
        RidgeClassifier(alpha=0.03).fit(X[s.train], y[s.train]).score(X[s.test], y[s.test])
        for s in splits
    ]
    entry = leaky["result"]["results"]["ridge_published"]["published"]["class6"]
    assert entry["accuracies"] == acc
    assert entry["printed_line"] == f"{np.mean(acc)} {np.std(acc)}"
    assert leaky["result"]["published_printed_line"] == entry["printed_line"]
    assert [s["n_train"] for s in leaky["result"]["splits"]["published"]] == [n_train] * 5


def test_alpha_and_train_fraction_come_from_the_caller(leaky, tmp_path):
    """ridge.alpha and ridge.train_fraction of the config reach the published ridge."""
    out = tmp_path / "p.json"
    paths = leaky["paths"]
    comparison.compare_to_file(
        paths["features"],
        paths["classifications"],
        paths["split_file"],
        None,
        ["class6"],
        2,
        7,
        str(out),
        alpha=5.0,
        train_fraction=0.6,
    )
    result = json.loads(out.read_text())
    rows = np.loadtxt(paths["split_file"], delimiter=",", dtype=np.int64)
    n_train = round(0.6 * N_IMAGES)
    X, y = leaky["X"], leaky["table"]["class6"].to_numpy()
    acc = [
        RidgeClassifier(alpha=5.0)
        .fit(X[r[:n_train]], y[r[:n_train]])
        .score(X[r[n_train:]], y[r[n_train:]])
        for r in rows[:2]
    ]
    assert result["results"]["ridge_published"]["published"]["class6"]["accuracies"] == acc
    assert result["train_fraction"] == 0.6
    assert [s["n_train"] for s in result["splits"]["published"]] == [n_train] * 2
    assert "alpha=5.0" in result["classifiers"]["ridge_published"]["model"]


def test_grouped_splits_keep_station_nights_apart_and_are_about_70_30(leaky):
    origins = origin_table.read_origins(
        leaky["paths"]["files_origin"], leaky["table"]["picNum"].to_numpy()
    )
    assert origins.group.max() + 1 == N_NIGHTS
    splits = protocols.grouped_splits(origins.group, 5, seed=7)
    largest = np.bincount(origins.group).max()
    for split in splits:
        assert not set(origins.group[split.train]) & set(origins.group[split.test])
        assert sorted([*split.train, *split.test]) == list(range(N_IMAGES))
        assert abs(split.train.size - round(0.7 * N_IMAGES)) <= largest / 2
    assert len({tuple(s.train) for s in splits}) > 1  # the splits differ
    again = protocols.grouped_splits(origins.group, 5, seed=7)
    assert all(np.array_equal(a.train, b.train) for a, b in zip(splits, again, strict=True))
    other = protocols.grouped_splits(origins.group, 5, seed=8)
    assert any(not np.array_equal(a.train, b.train) for a, b in zip(splits, other, strict=True))


def test_same_seed_gives_identical_results(leaky, tmp_path):
    again = run(leaky["paths"], tmp_path / "again.json")
    first = dict(leaky["result"])
    for result in (first, again):
        result.pop("timing_s")
    assert again == first
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_results_do_not_change_with_the_thread_count(leaky, tmp_path):
    one = run(leaky["paths"], tmp_path / "one.json", n_splits=3)
    two = run(leaky["paths"], tmp_path / "two.json", n_splits=3, n_jobs=2)
    assert one.pop("timing_s")["n_jobs"] == 1 and two.pop("timing_s")["n_jobs"] == 2
    assert one == two


# --- which classifiers ---------------------------------------------------------------------


def test_the_default_classifiers_are_the_published_ridge_and_logistic(leaky, tmp_path):
    result = run(
        leaky["paths"], tmp_path / "d.json", n_splits=2, classifiers=classifiers.DEFAULT_CLASSIFIERS
    )
    assert result["classifiers_run"] == ["ridge_published", "logistic"]
    assert set(result["results"]) == set(result["classifiers"]) == {"ridge_published", "logistic"}
    section = protocols_section(result).markdown
    assert "Classifiers run (config compare.classifiers): published ridge, logistic" in section
    assert "Not run: linear SVM." in section
    # the workflow's default is the same pair
    assert validate_config({})["compare"]["classifiers"] == list(classifiers.DEFAULT_CLASSIFIERS)


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ["ridge_published", "svm"],
            r"unknown classifier\(s\) 'svm'.*choose from "
            r"ridge_published, logistic, linear_svm",
        ),
        (["logistic"], r"must include ridge_published"),
        (["ridge_published", "logistic", "logistic"], r"names a classifier twice"),
    ],
)
def test_a_bad_classifier_list_is_refused_with_the_known_names(leaky, tmp_path, names, message):
    with pytest.raises(ProtocolInputError, match=message):
        run(leaky["paths"], tmp_path / "x.json", n_splits=2, classifiers=names)
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(ValueError, match=r"compare/classifiers"):
        validate_config({"compare": {"classifiers": names}})


# --- model selection -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["published", "grouped"])
def test_model_selection_never_sees_the_test_part(leaky, protocol):
    table = leaky["table"]
    groups = origin_table.read_origins(leaky["paths"]["files_origin"], table["picNum"]).group
    if protocol == "published":
        rows = np.loadtxt(leaky["paths"]["split_file"], delimiter=",", dtype=np.int64)
        split, cv_groups = protocols.published_splits(rows, 1)[0], None
    else:
        split, cv_groups = protocols.grouped_splits(groups, 1, seed=7)[0], groups
    ys = {k: table[k].to_numpy() for k in ("class6", "class2")}
    strata = table["class6"].to_numpy()
    clean = classifiers.run_split(leaky["X"], ys, split, strata, cv_groups, seed=7)

    poisoned = {k: v.copy() for k, v in ys.items()}
    poisoned["class6"][split.test] = (poisoned["class6"][split.test] + 1) % 6
    poisoned["class2"][split.test] = 1 - poisoned["class2"][split.test]
    bad_strata = strata.copy()
    bad_strata[split.test] = 0
    dirty = classifiers.run_split(leaky["X"], poisoned, split, bad_strata, cv_groups, seed=7)

    for name in ("logistic", "linear_svm"):
        for labels in ys:
            assert dirty[name][labels]["chosen"] == clean[name][labels]["chosen"]
            assert dirty[name][labels]["cv_scores"] == clean[name][labels]["cv_scores"]
            assert dirty[name][labels]["accuracy"] != clean[name][labels]["accuracy"]


def test_leakage_gap_is_positive_when_nights_hold_near_duplicates(leaky):
    result = leaky["result"]
    assert result["protocols"] == ["published", "grouped"]
    gap = result["leakage_gap"]["ridge_published"]["class6"]
    assert gap["gap"] > 0.2, gap
    assert gap["gap"] == pytest.approx(
        result["results"]["ridge_published"]["published"]["class6"]["mean_accuracy"]
        - result["results"]["ridge_published"]["grouped"]["class6"]["mean_accuracy"]
    )
    assert gap["gap_points"] == pytest.approx(100 * gap["gap"])
    for name in ("logistic", "linear_svm"):
        assert result["leakage_gap"][name]["class6"]["gap"] > 0
    assert result["grouping"]["n_groups"] == N_NIGHTS
    section = protocols_section(result)
    html, md = section.html, section.markdown
    sentence = "Keeping each station-night on one side lowers 6-class accuracy of the published"
    assert sentence in html and sentence in md
    assert f"{gap['gap_points']:.1f} points" in md
    assert result["published_printed_line"] in html and result["published_printed_line"] in md
    assert html.count("<tr>") == 1 + 3 * 2 * 2  # header + classifier x protocol x label set
    assert md.count("\n| class") == 3 * 2 * 2


def test_class2_tpr_is_the_recall_of_aurora(leaky):
    X, table = leaky["X"], leaky["table"]
    y = table["class2"].to_numpy()
    rows = np.loadtxt(leaky["paths"]["split_file"], delimiter=",", dtype=np.int64)
    entry = leaky["result"]["results"]["ridge_published"]["published"]["class2"]
    expected = []
    for split in protocols.published_splits(rows, 5):
        predicted = (
            RidgeClassifier(alpha=0.03).fit(X[split.train], y[split.train]).predict(X[split.test])
        )
        expected.append(recall_score(y[split.test], predicted, pos_label=0))
    assert entry["aurora_tprs"] == pytest.approx(expected)
    assert entry["mean_aurora_tpr"] == pytest.approx(np.mean(expected))
    for name in classifiers.CLASSIFIERS:
        for protocol in ("published", "grouped"):
            e = leaky["result"]["results"][name][protocol]["class2"]
            for tpr, split in zip(e["aurora_tprs"], e["per_split"], strict=True):
                matrix = np.array(split["confusion_matrix"])
                assert tpr == pytest.approx(matrix[0, 0] / matrix[0].sum())
    assert "mean_aurora_tpr" not in leaky["result"]["results"]["logistic"]["grouped"]["class6"]


# --- feature sets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooled(leaky):
    """The leaky features with a pooled feature set beside them, from random weights."""
    X, table = leaky["X"], leaky["table"]
    P = np.abs(np.random.RandomState(4).randn(N_IMAGES, 30)).astype(np.float32)
    P[:, :N_FEATURES] += 0.5 * X  # some of the signal, scaled and shifted
    paths = dict(leaky["paths"], features=str(leaky["folder"] / "pooled_feat.h5"))
    names = [f"{p:05d}_{a}.png" for p, a in zip(table["picNum"], table["angle"], strict=True)]
    attrs = {"weights": "random (test)", "random_weights": "true"}
    write_features(paths["features"], Features(names, X, attrs, prelogits=P))
    return {"P": P, "paths": paths}


def test_pooled_features_are_scored_on_the_same_splits_beside_logits(leaky, pooled, tmp_path):
    result = run(pooled["paths"], tmp_path / "p.json")
    assert result["layer"] == "Logits"
    assert result["layers"] == {
        "Logits": {"n_features": N_FEATURES, "classifiers": list(classifiers.CLASSIFIERS)},
        PRELOGITS: {"n_features": 30, "classifiers": ["ridge_published"]},
    }
    assert result["results"] == leaky["result"]["results"]  # Logits: as before, untouched
    ridge = result["layer_results"][PRELOGITS]["ridge_published"]
    rows = np.loadtxt(pooled["paths"]["split_file"], delimiter=",", dtype=np.int64)
    y, P = leaky["table"]["class6"].to_numpy(), pooled["P"]
    acc = [
        RidgeClassifier(alpha=0.03).fit(P[s.train], y[s.train]).score(P[s.test], y[s.test])
        for s in protocols.published_splits(rows, 5)
    ]
    assert ridge["published"]["class6"]["accuracies"] == acc
    assert (
        set(ridge) == {"published", "grouped"} and "mean_aurora_tpr" in ridge["grouped"]["class2"]
    )
    for protocol in ("published", "grouped"):
        reference = result["results"]["ridge_published"][protocol]["class6"]
        versus = result["versus_published_ridge"][PRELOGITS]["ridge_published"][protocol]["class6"]
        difference = ridge[protocol]["class6"]["mean_accuracy"] - reference["mean_accuracy"]
        assert versus["difference"] == pytest.approx(difference)
        itself = result["versus_published_ridge"]["Logits"]["ridge_published"][protocol]["class6"]
        assert itself["difference"] == 0.0
        std = reference["std_accuracy"]
        if std > 0:  # grouped splits here; the leaky published ones all score 1.0, std 0
            assert versus["in_split_std"] == pytest.approx(difference / std)
            assert itself["in_split_std"] == 0.0
        else:
            assert versus["in_split_std"] is None and itself["in_split_std"] is None

    section = protocols_section(result)
    html, md = section.html, section.markdown
    # the Logits table as before, then feature set x classifier x protocol x label set
    assert html.count("<tr>") == (1 + 3 * 2 * 2) + (1 + (3 + 1) * 2 * 2)
    assert "Feature sets" in html and "Feature sets" in md
    assert "| class6 | PreLogitsFlatten | ridge_published | grouped |" in md
    assert "split std" in md and "reference" in md
    sentence = "this table tests the machinery, not the science"
    assert sentence in html and sentence in md  # random weights, said plainly
    assert "set features: PreLogitsFlatten to score every classifier" in md


def test_configured_pooled_features_get_every_classifier(leaky, pooled, tmp_path):
    result = run(
        pooled["paths"], tmp_path / "p.json", files_origin=None, n_splits=2, layer=PRELOGITS
    )
    assert result["layer"] == PRELOGITS
    assert result["layers"][PRELOGITS]["classifiers"] == list(classifiers.CLASSIFIERS)
    assert set(result["layer_results"][PRELOGITS]) == set(classifiers.CLASSIFIERS)
    assert set(result["versus_published_ridge"][PRELOGITS]) == set(classifiers.CLASSIFIERS)
    # and a Logits-only file cannot give what is asked for: it says which file and what to do
    with pytest.raises(FeatureFileError, match=r"auroral_feat\.h5 holds no 'PreLogitsFlatten'"):
        run(leaky["paths"], tmp_path / "q.json", files_origin=None, n_splits=2, layer=PRELOGITS)
    logits_only = run(leaky["paths"], tmp_path / "r.json", files_origin=None, n_splits=2)
    assert list(logits_only["layers"]) == ["Logits"]
    assert "re-extract" in logits_only["layers_skipped"][PRELOGITS]
    assert "PreLogitsFlatten was not compared" in protocols_section(logits_only).markdown


# --- missing or bad inputs -----------------------------------------------------------------


@pytest.mark.parametrize("files_origin", [None, "absent"])
def test_without_files_origin_only_the_published_protocol_runs(leaky, tmp_path, files_origin):
    if files_origin == "absent":
        files_origin = str(tmp_path / "files_origin.csv")
    result = run(leaky["paths"], tmp_path / "p.json", files_origin=files_origin, n_splits=2)
    assert result["protocols"] == ["published"]
    assert "files_origin.csv" in result["protocols_skipped"]["grouped"]
    assert result["leakage_gap"] == {} and result["grouping"] is None
    assert set(result["results"]["logistic"]) == {"published"}
    section = protocols_section(result)
    html, md = section.html, section.markdown
    assert "The grouped protocol was not run" in md and "not run" in html


def test_bad_features_raise_a_value_error_naming_the_file(leaky, tmp_path):
    X, table = leaky["X"], leaky["table"]
    names = [f"{p:05d}_{a}.png" for p, a in zip(table["picNum"], table["angle"], strict=True)]
    short = tmp_path / "short.h5"
    write_features(short, Features(names[:-1], X[:-1]))
    with pytest.raises(ValueError, match="short.h5"):
        comparison.load_inputs(
            str(short), leaky["paths"]["classifications"], leaky["paths"]["split_file"], None
        )
    nan = tmp_path / "nan.h5"
    bad = X.copy()
    bad[3, 2] = np.nan
    write_features(nan, Features(names, bad))
    with pytest.raises(ValueError, match="nan.h5.*NaN"):
        comparison.load_inputs(
            str(nan), leaky["paths"]["classifications"], leaky["paths"]["split_file"], None
        )


# --- station-nights from files_origin.csv ----------------------------------------------------


def test_reads_the_demo_layout():
    table = demo_table(48, seed=5)
    origins = demo_origins(table, seed=5)
    parsed = origin_table.read_origins_frame(origins, table["picNum"])
    assert parsed.station.tolist() == origins["station"].tolist()
    keys = origins["station"] + origins["time"].str[:10]  # demo nights are 04-10 UT
    assert len(set(parsed.group)) == len(set(keys))


def test_parses_themis_file_names_and_keeps_nights_whole(tmp_path):
    path = tmp_path / "files_origin.csv"
    path.write_text(
        "# original files\n"
        "picNum,original_file\n"
        "1,stream0/2011/02/01/gbay_themis19/ut23/20110201_2350_gbay_themis19_full.pgm.gz\n"
        "2,stream0/2011/02/02/gbay_themis19/ut00/20110202_0010_gbay_themis19_full.pgm.gz\n"
        "3,20110202_1150_kian_themis20_full.pgm.gz\n"
        "4,20110202_1210_kian_themis20_full.pgm.gz\n"
        "5,20110203_0612_fsmi_themis14_full.pgm.gz\n"
        "6,thg_l1_asf_fsmi_2011020406_v01.cdf\n"
        "7,/data/fsmi/2011/02/04/20110204_0700_full.pgm.gz\n"
    )
    origins = origin_table.read_origins(path, [1, 2, 3, 4, 5, 6, 7])
    assert origins.station.tolist() == ["gbay"] * 2 + ["kian"] * 2 + ["fsmi"] * 3
    g = origins.group
    assert g[0] == g[1]  # across UT midnight at Goose Bay
    assert g[2] == g[3]  # across 12 UT at Kiana (01:20 local solar time)
    assert g[4] != g[5] and g[5] == g[6]  # consecutive Fort Smith nights
    assert len(set(g)) == 4
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("3,20110202_1150_kian_themis20_full.pgm.gz\n")
    assert origin_table.read_origins(headerless, [3]).station.tolist() == ["kian"]


def test_unknown_station_uses_its_observing_gap():
    frame = pd.DataFrame(
        {
            "picNum": [1, 2, 3, 4],
            "station": ["xyzw"] * 4,
            "time": [
                "2011-02-01T22:00",
                "2011-02-02T09:00",
                "2011-02-02T22:30",
                "2011-02-03T02:00",
            ],
        }
    )
    origins = origin_table.read_origins_frame(frame, [1, 2, 3, 4])
    assert origins.group.tolist() == [0, 0, 1, 1]
    assert "xyzw" in origins.night_rule


def test_separate_date_and_time_columns_are_joined():
    frame = pd.DataFrame(
        {
            "picNum": [1, 2, 3],
            "Station": ["GBAY", "gbay", "gbay"],
            "Date": ["2011-02-01", "2011-02-02", "2011-02-02"],
            "Time": ["23:50", "00:10", "23:00"],
        }
    )
    origins = origin_table.read_origins_frame(frame, [3, 2, 1])
    assert origins.station.tolist() == ["gbay"] * 3
    assert origins.night.tolist() == ["2011-02-02", "2011-02-01", "2011-02-01"]
    assert origins.group[1] == origins.group[2] != origins.group[0]


def test_unreadable_rows_are_left_out_with_file_and_line(tmp_path):
    path = tmp_path / "files_origin.csv"
    path.write_text(
        "picNum,station,time,file\n"
        "1,fsmi,2011-02-01T06:12:00,\n"
        "2,fsmi,2011-13-45Tnope,image_two.png\n"  # line 3: no time, none in the name
        "3,,2011-02-01T06:13:00,\n"  # line 4: no station
        "x,fsmi,2011-02-01T06:14:00,\n"  # line 5: picNum not a number
        "5,fsmi,2011-02-01T06:15:00,\n"
        "5,fsmi,2011-02-01T06:16:00,\n"  # lines 6, 7: picNum 5 twice
        "7,zzzz,2011-02-01T06:17:00,\n"  # not a THEMIS site: still a station-night
    )
    origins = origin_table.read_origins(path, [1, 2, 3, 5, 6, 7])
    assert origins.group.tolist() == [0, -1, -1, -1, -1, 1]
    assert origins.known.tolist() == [True, False, False, False, False, True]
    left = [(e["line"], e["picNum"]) for e in origins.left_out]
    assert left == [(3, 2), (4, 3), (5, None), (6, 5), (0, 6)]
    assert all(e["file"] == str(path) for e in origins.left_out)
    reasons = [e["reason"] for e in origins.left_out]
    assert "time cannot be parsed" in reasons[0] and "no station" in reasons[1]
    assert "not a whole number" in reasons[2] and "lines 6, 7" in reasons[3]
    assert "no row" in reasons[4]
    summary = origins.summary()
    assert summary["n_left_out"] == 4 and summary["n_groups"] == 2  # images, not rows


def test_a_files_origin_that_cannot_be_read_still_stops_with_its_name(tmp_path):
    path = tmp_path / "files_origin.csv"
    path.write_text("a,b\nx,y\n")
    with pytest.raises(ProtocolInputError, match=r"files_origin\.csv"):
        origin_table.read_origins(path, [1])
    with pytest.raises(ProtocolInputError, match=r"absent\.csv: cannot read"):
        origin_table.read_origins(tmp_path / "absent.csv", [1])


def test_grouped_splits_leave_unknown_rows_on_neither_side():
    groups = np.array([0, 0, -1, 1, 1, 2, -1, 2, 3, 3])
    for split in protocols.grouped_splits(groups, 3, seed=4):
        used = np.concatenate([split.train, split.test])
        assert set(used) == set(np.flatnonzero(groups >= 0))
        assert not set(groups[split.train]) & set(groups[split.test])


def one_night(leaky, nights: int) -> pd.DataFrame:
    """The leaky data's origins squeezed into ``nights`` station-nights."""
    X, table, origins = leaky_data()
    origins = origins.assign(
        station="fsmi",
        time=[f"2011-01-0{1 + 3 * (k % nights)}T05:{k % 60:02d}:00" for k in range(len(table))],
    )
    return X, table, origins


@pytest.mark.parametrize(
    ("nights", "classifiers", "found", "needed", "words"),
    [
        (1, ["ridge_published"], 1, 2, "1 station-night(s) with a known station and time found"),
        (2, ["ridge_published", "logistic"], 1, 2, "training part holds 1 of the 2"),
    ],
)
def test_the_grouped_protocol_below_its_minimum_is_left_out_and_said(
    leaky, tmp_path, nights, classifiers, found, needed, words
):
    paths = write_inputs(tmp_path / "in", *one_night(leaky, nights))
    result = run(paths, tmp_path / "p.json", n_splits=2, classifiers=classifiers)
    assert result["protocols"] == ["published"]
    short = result["protocols_left_out"]["grouped"]
    assert (short["found"], short["needed"]) == (found, needed)
    assert words in result["protocols_skipped"]["grouped"]
    assert result["grouping"]["n_groups"] == nights
    md = protocols_section(result).markdown
    assert f"The grouped protocol was not run: {short['reason']}" in md


def test_two_nights_are_enough_for_the_published_ridge_alone(leaky, tmp_path):
    X, table, origins = one_night(leaky, 2)
    origins.loc[3, "time"] = "not a time"
    paths = write_inputs(tmp_path / "in", X, table, origins)
    result = run(paths, tmp_path / "p.json", n_splits=2, classifiers=["ridge_published"])
    assert result["protocols"] == ["published", "grouped"]
    assert [(e["line"], e["picNum"]) for e in result["origins_left_out"]] == [(5, 4)]
    assert all(s["n_train"] + s["n_test"] == N_IMAGES - 1 for s in result["splits"]["grouped"])
    section = protocols_section(result)
    assert "rows left out of the grouped protocol" in section.markdown
    assert "| files_origin.csv | 5 | 4 |" in section.markdown
