"""Model files from elsewhere: every file xseq reads for the forecasters (XLSTMForecaster, ForecastEnsemble,
TiRexForecaster), the classifier (XLSTMClassifier.save/load) and TiRex checkpoints (read_checkpoint, load_tirex) is
read with torch.load(weights_only=True). A file holding a pickled object that would run code is refused with a
ValueError naming the file, and the code does not run; a truncated or corrupted file, another model's file, and a
file of another xseq version are ValueErrors naming the file, never a traceback from inside torch."""
import io
import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch

from tests.hostile import Payload
from tests.properties.outcome import examples
from xseq import ForecastEnsemble, TiRexForecaster, XLSTMClassifier, XLSTMForecaster
from xseq.forecast.tirex import TiRexConfig, TiRexNet, load_tirex, read_checkpoint, save_tirex

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST_F = dict(d_model=8, num_heads=2, layout="m", patch_len=4, max_epochs=1, batch_size=32, max_train_windows=32,
              threads=1, progress_bar=False, verbose=0, val_size=0)
TIREX = TiRexConfig(patch_size=8, num_blocks=1, d_model=16, num_heads=2, input_ff_dim=32, context_length=64)
FORMATS = {"forecaster": "xseq.XLSTMForecaster/2", "classifier": "xseq.XLSTMClassifier/1",
           "tirex_forecaster": "xseq.TiRexForecaster/1", "ensemble": "xseq.ForecastEnsemble/1"}


def frame(T=48):
    t = np.arange(T)
    return pd.DataFrame({"a": 10 + np.sin(t / 3), "b": np.cos(t / 5)},
                        index=pd.date_range("2024-01-01", periods=T, freq="h"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a good file of every kind (the fitted models are in `fitted`)."""
    d = tmp_path_factory.mktemp("files")
    y = frame()
    models = {"forecaster": XLSTMForecaster(3, 8, **FAST_F).fit(y),
              "ensemble": ForecastEnsemble(XLSTMForecaster(3, 8, **FAST_F), lookbacks=[8, 6]).fit(y)}
    rng = np.random.default_rng(0)
    models["classifier"] = XLSTMClassifier(d_model=8, num_heads=2, layout="m", max_epochs=1, threads=1,
                                           progress_bar=False, verbose=0).fit(rng.standard_normal((6, 5, 2)),
                                                                              ["x", "y"] * 3)
    torch.manual_seed(0)
    save_tirex(TiRexNet(TIREX), d / "tirex.ckpt")
    models["tirex_forecaster"] = TiRexForecaster(d / "tirex.ckpt", horizon=4, verbose=0).fit(y)
    for kind, model in models.items():
        model.save(d / f"{kind}.pt")
    fitted.update(models)
    return d


fitted = {}


LOADERS = {"forecaster": XLSTMForecaster.load, "classifier": XLSTMClassifier.load,
           "tirex_forecaster": TiRexForecaster.load, "ensemble": ForecastEnsemble.load,
           "tirex_checkpoint": load_tirex, "tirex_read_checkpoint": read_checkpoint}
GOOD = {"forecaster": "forecaster.pt", "classifier": "classifier.pt", "tirex_forecaster": "tirex_forecaster.pt",
        "ensemble": "ensemble.pt", "tirex_checkpoint": "tirex.ckpt", "tirex_read_checkpoint": "tirex.ckpt"}
KINDS = list(LOADERS)


def refused_naming(path, fn, *more):
    """fn() raises a ValueError whose message names `path` (and matches every pattern in `more`)."""
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    assert str(path) in msg or path.name in msg, f"the message does not name the file: {msg}"
    for pattern in more:
        assert re.search(pattern, msg), f"{pattern!r} not in: {msg}"
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, ValueError)
    return msg


@pytest.mark.parametrize("kind", KINDS)
def test_good_files_load_weights_only_from_a_path_and_a_file_object(files, kind, monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    path = files / GOOD[kind]
    a = LOADERS[kind](path)
    if kind not in ("tirex_checkpoint", "tirex_read_checkpoint"):
        b = LOADERS[kind](io.BytesIO(path.read_bytes()))
        assert type(a) is type(b)
    assert seen and all(w is True for w in seen), seen


def _hostile_state(kind, marker):
    if kind.startswith("tirex_") and kind != "tirex_forecaster":
        return {"hyper_parameters": Payload(marker), "state_dict": {}}
    return {"format": FORMATS[kind], "params": Payload(marker)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, kind, writer):
    marker, path = tmp_path / "marker.txt", tmp_path / "hostile.pt"
    state = _hostile_state(kind, marker)
    if writer == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))
    refused_naming(path, lambda: LOADERS[kind](path), r"refused to load .*could run code")
    assert not marker.exists(), "loading the file ran the code it holds"
    if kind not in ("tirex_checkpoint", "tirex_read_checkpoint"):  # these two read paths only
        with pytest.raises(ValueError, match="refused to load the given file object"):
            LOADERS[kind](io.BytesIO(path.read_bytes()))
    assert not marker.exists()
    # the file is a real payload: an unrestricted load runs it
    torch.load(path, weights_only=False) if writer == "torch.save" else pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", ["empty", "one_byte", "half", "all_but_last", "header_zeroed", "text",
                                    "random", "folder", "missing"])
def test_damaged_files_are_value_errors_naming_them(files, tmp_path, kind, damage):
    data = (files / GOOD[kind]).read_bytes()
    path = tmp_path / "damaged.pt"
    rng = np.random.default_rng(0)
    content = {"empty": b"", "one_byte": data[:1], "half": data[:len(data) // 2], "all_but_last": data[:-1],
               "header_zeroed": bytes(64) + data[64:], "text": "hello, I am a model".encode(),
               "random": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()}.get(damage)
    if damage == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    refused_naming(path, lambda: LOADERS[kind](path))


@examples(30)
@given(kind=st.sampled_from(KINDS), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=6))
def test_damaged_files_property(files, tmp_path_factory, kind, cut, flips):
    """Any truncation and any flipped bytes: the file loads (flips inside tensor data go unseen) or is a
    ValueError naming it."""
    data = bytearray((files / GOOD[kind]).read_bytes())
    for where, xor in flips:
        data[int(where * (len(data) - 1))] ^= xor
    data = bytes(data[:max(1, int(round(cut * len(data))))]) if cut < 1 else bytes(data)
    path = tmp_path_factory.mktemp("flip") / "damaged.pt"
    path.write_bytes(data)
    try:
        LOADERS[kind](path)
    except ValueError as e:
        assert str(path) in str(e) or "damaged.pt" in str(e), str(e)


@pytest.mark.parametrize("kind", KINDS)
def test_another_models_file_is_named(files, tmp_path, kind):
    others = [k for k in KINDS if GOOD[k] != GOOD[kind]]
    for other in others:
        path = files / GOOD[other]
        refused_naming(path, lambda: LOADERS[kind](path))
    foreign = {"rl_agent.pt": {"format": "xseq.rl/2", "config": {}}, "tensor.pt": torch.zeros(3),
               "lm.ckpt": {"hyper_parameters": {"recipe": {}}, "state_dict": {}}, "list.pt": [1, 2, 3]}
    for name, obj in foreign.items():
        torch.save(obj, tmp_path / name)
        refused_naming(tmp_path / name, lambda: LOADERS[kind](tmp_path / name))


@pytest.mark.parametrize("kind", ["forecaster", "classifier", "tirex_forecaster", "ensemble"])
def test_files_of_other_xseq_versions_and_incomplete_ones_are_named(files, tmp_path, kind):
    good = torch.load(files / GOOD[kind], weights_only=True)
    name, version = FORMATS[kind].rsplit("/", 1)
    path = tmp_path / "other.pt"
    torch.save({**good, "format": f"{name}/{int(version) + 1}"}, path)
    refused_naming(path, lambda: LOADERS[kind](path), re.escape(f"{name}/{int(version) + 1}"))
    if kind == "forecaster":
        torch.save({**good, "format": f"{name}/1"}, path)
        refused_naming(path, lambda: LOADERS[kind](path), "older xseq")
    torch.save({"format": FORMATS[kind]}, path)  # the tag alone
    refused_naming(path, lambda: LOADERS[kind](path), "not a complete")
    weights_key = {"forecaster": "net", "classifier": "net", "tirex_forecaster": "weights"}.get(kind)
    if weights_key:  # every tensor of another shape: a file of another configuration
        bad = {k: torch.zeros(3) for k in good[weights_key]}
        torch.save({**good, weights_key: bad}, path)
        refused_naming(path, lambda: LOADERS[kind](path))
        bad = dict(good[weights_key])
        bad.pop(next(iter(bad)))
        torch.save({**good, weights_key: bad}, path)
        refused_naming(path, lambda: LOADERS[kind](path))
    if "params" in good:  # a parameter this xseq does not know
        torch.save({**good, "params": {**good["params"], "no_such_param": 1}}, path)
        refused_naming(path, lambda: LOADERS[kind](path))


@pytest.mark.parametrize("damage", ["hostile_config", "huge_blocks", "wrong_width", "non_str_names", "reshape"])
def test_tirex_checkpoints_of_another_model_are_named_before_anything_is_built(files, tmp_path, damage):
    good = torch.load(files / "tirex.ckpt", weights_only=True)
    hp, sd = good["hyper_parameters"], dict(good["state_dict"])
    bk = hp["model_config"]["block_kwargs"]
    if damage == "hostile_config":
        hp = {**hp, "model_config": {**hp["model_config"], "quantiles": "abc"}}
    elif damage == "huge_blocks":  # listing the names of 10**9 blocks would take forever
        hp = {**hp, "model_config": {**hp["model_config"], "block_kwargs": {**bk, "num_blocks": 10**9}}}
    elif damage == "wrong_width":  # a network of this width would need ~40 GB
        hp = {**hp, "model_config": {**hp["model_config"], "block_kwargs": {**bk, "embedding_dim": 2**17}}}
    elif damage == "non_str_names":
        sd[7] = torch.zeros(1)
    else:
        key = next(k for k in sd if k.endswith("_recurrent_kernel_"))
        sd[key] = torch.zeros(5)
    path = tmp_path / "other.ckpt"
    torch.save({"hyper_parameters": hp, "state_dict": sd}, path)
    refused_naming(path, lambda: load_tirex(path))


def test_save_load_round_trip_predicts_the_same(files):
    for kind in ("forecaster", "ensemble", "tirex_forecaster"):
        for source in (files / f"{kind}.pt", io.BytesIO((files / f"{kind}.pt").read_bytes())):
            pd.testing.assert_frame_equal(LOADERS[kind](source).predict(), fitted[kind].predict())
    X = np.random.default_rng(1).standard_normal((4, 7, 2))
    c = XLSTMClassifier.load(files / "classifier.pt")
    assert list(c.classes_) == ["x", "y"] and c.get_params() == fitted["classifier"].get_params()
    np.testing.assert_array_equal(c.predict_proba(X), fitted["classifier"].predict_proba(X))
    np.testing.assert_array_equal(c.predict(X), fitted["classifier"].predict(X))
