"""gk.save / gk.load: .npz state dicts with no pickle; clear errors for bad files;
atomic writes; a model is left unchanged by a state dict that doesn't fit."""
import io
import json
import math
import os
import zipfile

import numpy as np
import pytest

import gradkit as gk
from gradkit import nn, optim
from gradkit.backends import io as gio

from helpers import to_np


def _model():
    gk.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _same(a, b):
    if isinstance(a, gk.Tensor):
        assert isinstance(b, gk.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        assert a.device == b.device and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(to_np(a), to_np(b))
    elif isinstance(a, dict):
        assert list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b]
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert a == b and type(a) is type(b)


def test_round_trip_nested(device, tmp_path):
    obj = {
        "weights": {name: gk.tensor(np.arange(6).reshape(2, 3), dtype=name, device=device)
                    for name in ("float16", "float32", "float64", "int32", "int64")
                    if name != "float16" or device != "fake"},  # array API: no float16
        "mask": gk.tensor([True, False], device=device),
        "scalar": gk.tensor(2.5, dtype=gk.float64, device=device),
        "empty": gk.zeros(0, 3, device=device),
        "param": gk.ones(2, device=device, requires_grad=True),
        "state": {0: {"step": 7, "buf": gk.ones(3, device=device)}, 1: {"step": 2}},
        "groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "foreach": None,
                    "params": [0, 1]}],
        "numbers": [1, -2.5, float("inf"), float("-inf"), float("nan"), True, None, "text/ü"],
        "keys with/odd chars%": gk.ones(1, device=device),
        1.5: "float key", None: "none key", True: "bool key",
        "host": np.arange(4.0),
    }
    path = tmp_path / "ck.npz"
    gk.save(obj, path)
    back = gk.load(path)
    host = back.pop("host")
    np.testing.assert_array_equal(host, np.arange(4.0))
    obj.pop("host")
    _same(obj, back)
    # a standard .npz: NumPy reads it without pickle
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["weights/float32"], np.arange(6).reshape(2, 3))
        assert "state/0/buf" in z.files and "keys%20with%2Fodd%20chars%25" in z.files
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind


def test_model_and_optimizer_checkpoint(tmp_path):
    m = _model()
    opt = optim.AdamW(m.parameters(), lr=0.01)
    x, y = gk.randn(8, 3), gk.randint(0, 2, (8,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    gk.save({"model": m.state_dict(), "optim": opt.state_dict(), "epoch": 3},
            tmp_path / "ck.npz")
    m2 = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt2 = optim.AdamW(m2.parameters(), lr=0.5)
    ck = gk.load(tmp_path / "ck.npz", map_location="cpu")
    m2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optim"])
    assert ck["epoch"] == 3 and opt2.param_groups[0]["lr"] == 0.01
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    for o in (opt, opt2):
        o.zero_grad()
    nn.functional.cross_entropy(m(x), y).backward()
    nn.functional.cross_entropy(m2(x), y).backward()
    opt.step()
    opt2.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(to_np(a.detach()), to_np(b.detach()))


def test_file_objects_and_map_location(device):
    buf = io.BytesIO()
    w = gk.ones(2, device=device)
    gk.save({"w": w}, buf)
    buf.seek(0)
    assert gk.load(buf)["w"].device == device
    buf.seek(0)
    assert gk.load(buf, map_location="cpu")["w"].device == "cpu"
    buf.seek(0)
    # a dict maps the saved location tag, which names the index ('cuda:0'), as torch's
    assert gk.load(buf, map_location={str(w.device): "cpu"})["w"].device == "cpu"


def _rewrite(path, fn):
    """Rewrite an archive's metadata through ``fn(doc)``."""
    arrays, meta = gio.read_npz(path)
    doc = json.loads(meta)
    fn(doc)
    gio.write_npz(path, arrays, json.dumps(doc).encode())


def test_cuda_checkpoint_without_cuda_says_map_location(tmp_path):
    if gk.cuda.is_available():
        pytest.skip("CUDA is usable here")
    path = tmp_path / "ck.npz"
    gk.save({"w": gk.ones(2)}, path)
    _rewrite(path, lambda d: d["tree"]["__dict__"][0][1].update(device="cuda:0"))
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        gk.load(path)
    assert gk.load(path, map_location="cpu")["w"].device == "cpu"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "npy", "no_meta",
                                    "bad_json", "missing_array"])
def test_corrupt_files_raise_clear_errors(damage, tmp_path):
    path = tmp_path / "ck.npz"
    gk.save(_model().state_dict(), path)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(200))
    elif damage == "flip":  # inside an array's bytes: the CRC check catches it
        i = raw.index(b"\n", raw.index(b"\x93NUMPY")) + 5  # past the .npy header
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "npy":
        np.save(path.open("wb"), np.arange(3))
    elif damage == "no_meta":
        np.savez(path, a=np.arange(3))
    elif damage == "bad_json":
        arrays, _ = gio.read_npz(path)
        gio.write_npz(path, arrays, b"{not json")
    elif damage == "missing_array":
        _rewrite(path, lambda d: d["tree"]["__dict__"][0][1].update(__tensor__="nope"))
    with pytest.raises(RuntimeError) as e:
        gk.load(path)
    assert str(path) in str(e.value) and "gk.load" in str(e.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        gk.load("/nonexistent/dir/ck.npz")


def test_object_arrays_refused(tmp_path):
    path = tmp_path / "evil.npz"
    good = tmp_path / "good.npz"
    gk.save({"w": gk.ones(2)}, good)
    _, meta = gio.read_npz(good)
    obj = np.empty(1, dtype=object)
    obj[0] = {"code": "anything"}
    np.savez(path, allow_pickle=True, w=obj, __gradkit__=np.frombuffer(meta, np.uint8))
    with pytest.raises(RuntimeError, match="refuses to unpickle") as e:
        gk.load(path)
    assert str(path) in str(e.value)
    import pickle
    path.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(RuntimeError, match=str(path).replace("\\", "\\\\")):
        gk.load(path)
    with pytest.raises(TypeError, match="no pickle"):
        gk.save({"x": obj}, tmp_path / "x.npz")


def test_unsupported_objects_and_atomic_overwrite(tmp_path):
    path = tmp_path / "ck.npz"
    gk.save({"a": gk.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="can't save a Linear"):
        gk.save({"model": nn.Linear(2, 2)}, path)
    with pytest.raises(TypeError, match="dict keys"):
        gk.save({(1, 2): 3}, path)
    bad = np.empty(2, dtype=object)
    with pytest.raises(TypeError):  # fails mid-write: the old file stays whole
        gk.save({"a": gk.zeros(2), "b": bad}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None


def test_shape_mismatch_leaves_model_unchanged(tmp_path):
    m = _model()
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    gk.save(other.state_dict(), tmp_path / "other.npz")
    before = {k: to_np(v).copy() for k, v in m.state_dict().items()}
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(gk.load(tmp_path / "other.npz"))
    msg = str(e.value)
    for key, got, want in [("0.weight", (5, 3), (4, 3)), ("0.bias", (5,), (4,)),
                           ("2.weight", (2, 5), (2, 4))]:
        assert f"size mismatch for {key}" in msg and str(got) in msg and str(want) in msg
    assert "2.bias" not in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(to_np(v), before[k])
