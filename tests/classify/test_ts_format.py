"""The .ts reader on the four archive sets and on small hand-written files."""
import numpy as np
import pytest

from xseq.datasets import load_ts

SETS = {  # name: (n_train, n_test, channels, equal length, classes)
    "GunPoint": (50, 150, 1, True, ["1", "2"]),
    "ItalyPowerDemand": (67, 1029, 1, True, ["1", "2"]),
    "BasicMotions": (40, 40, 6, True, ["Standing", "Running", "Walking", "Badminton"]),
    "JapaneseVowels": (270, 370, 12, False, [str(i) for i in range(1, 10)]),
}


@pytest.mark.parametrize("name", SETS)
def test_archive_sets(data_dir, name):
    n_train, n_test, C, equal, classes = SETS[name]
    for part, n in (("TRAIN", n_train), ("TEST", n_test)):
        d = load_ts(f"ucr/{name}/{name}_{part}.ts", data_dir=data_dir)
        assert d.name == name and d.classes == classes and len(d.y) == n
        assert set(d.y) <= set(classes)
        if equal:
            assert isinstance(d.X, np.ndarray) and d.X.shape[0] == n and d.X.shape[2] == C
        else:
            assert isinstance(d.X, list) and len(d.X) == n and all(x.shape[1] == C for x in d.X)
            assert len({len(x) for x in d.X}) > 1
        assert all(np.isfinite(x).all() for x in d.X)
    X, y = load_ts(f"ucr/{name}/{name}_TRAIN.ts", data_dir=data_dir)  # unpacks as (X, y)
    assert len(X) == len(y)


def test_values_labels_and_missing(tmp_path):
    f = tmp_path / "toy.ts"
    f.write_text("# a comment\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n"
                 "@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n"
                 "1,2,3:4,5,6:up\n7,?:8,9:down\n")
    d = load_ts(f)
    assert d.name == "Toy" and d.classes == ["up", "down"] and list(d.y) == ["up", "down"]
    np.testing.assert_array_equal(d.X[0], [[1, 4], [2, 5], [3, 6]])
    assert np.isnan(d.X[1][1, 0]) and d.X[1][1, 1] == 9


@pytest.mark.parametrize("body, match", [
    ("@data\n1,2:a\n", "@dimensions|labels|values"),
    ("@classLabel true a b\n@data\n1,2,3:c\n", "not among the declared classes"),
    ("@classLabel true a\n@data\n1,2:1,2,3:a\n", "different lengths"),
    ("@classLabel true a\n@data\n1,x:a\n", "cannot read the values"),
    ("@classLabel true a\n", "no @data"),
    ("@timeStamps true\n@data\n(0,1):a\n", "timeStamps"),
])
def test_malformed_files(tmp_path, body, match):
    f = tmp_path / "bad.ts"
    f.write_text(body)
    with pytest.raises(ValueError, match=match):
        load_ts(f)


def test_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="XSEQ_DATA_DIR"):
        load_ts("ucr/Nope/Nope_TRAIN.ts", data_dir=tmp_path)
