"""Checkpoints under faults and attack (issue 6, Reliability).

A truncated, corrupt or hostile ``.npz`` (pickled code, member names that try
to leave the archive, .npy headers declaring huge shapes, zip bombs, members
the metadata doesn't name) raises a clear error naming the file: nothing is
allocated for the declared sizes, no code runs, and the model being loaded
into is left unchanged. ``gk.save`` is atomic: a save killed with SIGKILL in
the middle of writing leaves the previous checkpoint intact."""
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import gradkit as gk
from gradkit import nn
from gradkit.tensor import GradkitError

from helpers import to_np


def _model():
    gk.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _snapshot(m):
    return {k: to_np(v).copy() for k, v in m.state_dict().items()}


def _assert_unchanged(m, snap):
    now = _snapshot(m)
    assert list(now) == list(snap)
    for k in snap:
        np.testing.assert_array_equal(now[k], snap[k])


def _load_into(m, path):
    """Load ``path`` into ``m`` as a user does; must raise a clear error."""
    with pytest.raises(GradkitError) as e:
        m.load_state_dict(gk.load(path))
    msg = str(e.value)
    assert "gk.load" in msg and str(path) in msg, msg
    return msg


def _npy(arr, allow_pickle=False):
    b = io.BytesIO()
    np.lib.format.write_array(b, arr, allow_pickle=allow_pickle)
    return b.getvalue()


def _npy_header(shape, descr="<f4"):
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return b.getvalue()


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_zip(path, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.fixture
def good(tmp_path):
    """A real checkpoint of the model, and the model (freshly initialized)."""
    m = _model()
    path = tmp_path / "good.npz"
    gk.save(m.state_dict(), path)
    return m, path


# ------------------------------------------------------------ truncated/corrupt
def test_truncated_anywhere(good, tmp_path):
    m, path = good
    raw = path.read_bytes()
    snap = _snapshot(m)
    bad = tmp_path / "cut.npz"
    cuts = sorted(set([0, 1, 4, 30, 64, len(raw) // 2, len(raw) - 22, len(raw) - 1]
                      + list(range(0, len(raw), max(1, len(raw) // 25)))))
    for cut in cuts:
        bad.write_bytes(raw[:cut])
        msg = _load_into(m, bad)
        assert "truncated" in msg or "corrupt" in msg or "not a valid" in msg, msg
        _assert_unchanged(m, snap)


def test_corrupt_byte_anywhere_is_caught_or_harmless(good, tmp_path):
    """Flip one byte at many places: either a clear error, or (a byte the format
    doesn't use, e.g. a timestamp) exactly the saved values; never a silently
    different weight."""
    m, path = good
    raw = path.read_bytes()
    want = _snapshot(m)
    bad = tmp_path / "flip.npz"
    caught = 0
    for i in range(0, len(raw), max(1, len(raw) // 60)):
        bad.write_bytes(raw[:i] + bytes([raw[i] ^ 0x5A]) + raw[i + 1:])
        try:
            sd = gk.load(bad)
        except GradkitError as e:
            assert str(bad) in str(e)
            caught += 1
            continue
        assert list(sd) == list(want), f"byte {i}: keys changed"
        for k in want:
            np.testing.assert_array_equal(to_np(sd[k]), want[k], err_msg=f"byte {i}")
    assert caught > 30  # most bytes matter


# -------------------------------------------------------------------- hostile
MARKER_CODE = "open({marker!r}, 'w').write('code ran')"


class _Payload:
    """Unpickling this runs code (writes the marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (MARKER_CODE.format(marker=self.marker),))


def _evil_object_array(marker):
    a = np.empty(1, dtype=object)
    a[0] = _Payload(marker)
    return a


@pytest.mark.parametrize("where", ["tensor_member", "meta_member", "plain_pickle", "single_npy"])
def test_pickled_code_never_runs(good, tmp_path, where):
    m, path = good
    snap = _snapshot(m)
    marker = tmp_path / "PWNED"
    # the payload really runs code when unpickled: the test would see it
    pickle.loads(pickle.dumps(_Payload(str(marker) + ".selftest")))
    assert (tmp_path / "PWNED.selftest").exists()

    bad = tmp_path / "evil.npz"
    members = _members(path)
    evil = _npy(_evil_object_array(str(marker)), allow_pickle=True)
    if where == "tensor_member":
        members[next(n for n in members if n != "__gradkit__.npy")] = evil
        _write_zip(bad, members)
    elif where == "meta_member":
        members["__gradkit__.npy"] = evil
        _write_zip(bad, members)
    elif where == "plain_pickle":
        bad.write_bytes(pickle.dumps({"0.weight": _Payload(str(marker))}))
    else:
        bad.write_bytes(evil)
    msg = _load_into(m, bad)
    assert "pickle" in msg or "not a gradkit" in msg or "truncated" in msg, msg
    assert not marker.exists(), "loading a checkpoint ran code"
    _assert_unchanged(m, snap)


@pytest.mark.parametrize("name", ["../evil.npy", "../../evil.npy", "/tmp/evil.npy",
                                  "a/../../evil.npy", "..\\evil.npy", "C:/evil.npy",
                                  "0.weight/../../evil.npy"])
def test_path_tricks_in_member_names(good, tmp_path, name):
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    bad = tmp_path / "sub" / "tricks.npz"
    bad.parent.mkdir()
    members[name] = _npy(np.zeros(3, np.float32))
    _write_zip(bad, members)
    before = set(os.listdir(tmp_path))
    msg = _load_into(m, bad)
    assert repr(name) in msg and "path trick" in msg, msg
    assert set(os.listdir(tmp_path)) == before  # nothing written anywhere
    _assert_unchanged(m, snap)


def test_path_trick_named_by_the_metadata(good, tmp_path):
    """The metadata itself points a tensor at a member named '../w'."""
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    victim = next(n for n in members if n != "__gradkit__.npy")
    meta = np.lib.format.read_array(io.BytesIO(members["__gradkit__.npy"])).tobytes()
    meta = meta.replace(victim[:-4].encode(), b"../" + victim[:-4].encode(), 1)
    members["../" + victim] = members.pop(victim)
    members["__gradkit__.npy"] = _npy(np.frombuffer(meta, np.uint8))
    bad = tmp_path / "meta_trick.npz"
    _write_zip(bad, members)
    assert "path trick" in _load_into(m, bad)
    _assert_unchanged(m, snap)


def test_members_the_metadata_does_not_name(good, tmp_path):
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    members["extra.npy"] = _npy(np.arange(3))
    bad = tmp_path / "extra.npz"
    _write_zip(bad, members)
    assert "doesn't describe" in _load_into(m, bad)
    members = _members(path)
    members["readme.txt"] = b"hello"
    _write_zip(bad, members)
    assert "readme.txt" in _load_into(m, bad)
    _assert_unchanged(m, snap)


def test_wrong_shape_in_a_valid_archive_leaves_model_unchanged(good, tmp_path):
    """The archive is well formed but its last tensor has another shape: the
    load itself succeeds, ``load_state_dict`` refuses, and no parameter (not even
    the ones before the bad one) has changed."""
    m, path = good
    snap = _snapshot(m)
    sd = gk.load(path)
    for k in sd:
        sd[k] = sd[k] + 1.0
    last = list(sd)[-1]
    sd[last] = gk.zeros(7)
    bad = tmp_path / "shape.npz"
    gk.save(sd, bad)
    with pytest.raises(GradkitError, match=f"size mismatch for {last}"):
        m.load_state_dict(gk.load(bad))
    _assert_unchanged(m, snap)


@pytest.mark.parametrize("shape", [(2 ** 40,), (2 ** 31,), (1 << 20, 1 << 20), (4, 3, 10 ** 9)])
def test_huge_declared_shapes_allocate_nothing(good, tmp_path, shape):
    """A .npy header may declare any shape; NumPy allocates the declared size
    before reading. The loader must refuse it first: fast, with no big
    allocation (tracemalloc sees NumPy's allocations)."""
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    victim = next(n for n in members if n != "__gradkit__.npy")
    members[victim] = _npy_header(shape) + b"\0" * 48
    bad = tmp_path / "huge.npz"
    _write_zip(bad, members)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = _load_into(m, bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < 20 * 2 ** 20, f"loading allocated {peak} bytes"
    assert str(shape) in msg and "declares" in msg, msg
    _assert_unchanged(m, snap)


def test_zip_bomb(good, tmp_path):
    """A deflated member that expands 64 MiB of zeros from ~64 KiB."""
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    victim = next(n for n in members if n != "__gradkit__.npy")
    n = 16 * 2 ** 20
    members[victim] = _npy_header((n,)) + bytes(4 * n)
    bad = tmp_path / "bomb.npz"
    _write_zip(bad, members, compress=zipfile.ZIP_DEFLATED)
    assert bad.stat().st_size < 2 ** 20
    del members
    tracemalloc.start()
    try:
        msg = _load_into(m, bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in msg, msg
    assert peak < 20 * 2 ** 20, f"loading allocated {peak} bytes"
    _assert_unchanged(m, snap)


# --------------------------------------------------------------- atomic save
CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import gradkit as gk

    real = np.lib.format.write_array
    said = []

    def slow_write_array(fp, arr, *a, **k):
        # write the array in small pieces, slowly: the parent kills us meanwhile
        if not said:
            said.append(1)
            print("WRITING", flush=True)
        buf = __import__("io").BytesIO()
        real(buf, arr, *a, **k)
        data = buf.getvalue()
        for i in range(0, len(data), 1 << 16):
            fp.write(data[i:i + (1 << 16)])
            time.sleep(0.01)

    np.lib.format.write_array = slow_write_array
    big = {f"layer{i}.weight": gk.ones(256, 256) * i for i in range(16)}
    gk.save(big, sys.argv[1])
    print("FINISHED", flush=True)
""")


def test_save_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "ck.npz"
    m = _model()
    gk.save(m.state_dict(), path)
    before = path.read_bytes()

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "WRITING", (line, child.stderr.read())
        time.sleep(0.3)  # well inside the ~2.5 s write
        assert child.poll() is None, "the save finished before the kill"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    # the previous checkpoint is intact and loads into a model
    assert path.read_bytes() == before, "a killed save damaged the previous checkpoint"
    fresh = _model()
    with gk.no_grad():
        for p in fresh.parameters():
            p.zero_()
    fresh.load_state_dict(gk.load(path))
    _assert_unchanged(fresh, _snapshot(m))
    # ... though the kill did land mid-write: the partial temporary file is left
    leftovers = [f for f in os.listdir(tmp_path) if f != "ck.npz"]
    assert leftovers and all(f.endswith(".tmp") for f in leftovers), leftovers
    # the leftover does not get in the way of the next save, which removes it
    # (its process is gone; issue 11 item 9)
    assert all(".ck.npz.gksave." in f for f in leftovers), leftovers
    gk.save({"x": gk.ones(2)}, path)
    np.testing.assert_array_equal(to_np(gk.load(path)["x"]), np.ones(2, np.float32))
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]


# ------------------------------------------- issue 11, items 6-9: more hostile archives
def test_many_small_bombs_are_refused_before_decompressing(good, tmp_path):
    """300 members that each pass the per-member ratio rule (1 MiB of zeros
    deflates to ~1 KiB): the total is capped before anything is decompressed."""
    m, path = good
    snap = _snapshot(m)
    members = _members(path)
    meta = json.loads(np.lib.format.read_array(io.BytesIO(members.pop("__gradkit__.npy"))).tobytes())
    n = 2 ** 18   # 1 MiB of float32 zeros each
    zeros = _npy_header((n,)) + bytes(4 * n)
    pairs = meta["tree"]["__dict__"]
    for i in range(300):
        name = f"bomb{i}"
        members[name + ".npy"] = zeros
        pairs.append([name, {"__tensor__": name, "dtype": "float32", "device": "cpu",
                             "requires_grad": False}])
    members["__gradkit__.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    bad = tmp_path / "bombs.npz"
    _write_zip(bad, members, compress=zipfile.ZIP_DEFLATED)
    del members, zeros
    assert bad.stat().st_size < 2 ** 20
    tracemalloc.start()
    try:
        msg = _load_into(m, bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in msg and "in total" in msg, msg
    assert peak < 20 * 2 ** 20, f"loading allocated {peak} bytes"
    _assert_unchanged(m, snap)


def test_undescribed_member_refused_before_any_member_is_read(good, tmp_path, monkeypatch):
    m, path = good
    members = _members(path)
    members["extra.npy"] = _npy(np.arange(3))
    bad = tmp_path / "extra.npz"
    _write_zip(bad, members)
    reads = []
    real = np.lib.format.read_array

    def spy(fp, *a, **k):
        out = real(fp, *a, **k)
        reads.append(out.dtype)
        return out
    monkeypatch.setattr(np.lib.format, "read_array", spy)
    assert "doesn't describe" in _load_into(m, bad)
    assert reads == [np.uint8], reads   # the metadata member only


@pytest.mark.parametrize("dtype", ["complex64", ">f4", "float128", "<U3"])
def test_unsupported_dtypes_in_a_crafted_file(good, tmp_path, dtype):
    m, path = good
    members = _members(path)
    meta = json.loads(np.lib.format.read_array(io.BytesIO(members["__gradkit__.npy"])).tobytes())
    name, node = meta["tree"]["__dict__"][0]
    arr = np.zeros(tuple(m.state_dict()[name].shape), dtype=np.dtype(dtype))
    members[node["__tensor__"] + ".npy"] = _npy(arr)
    node["dtype"] = str(arr.dtype)
    members["__gradkit__.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    bad = tmp_path / "dtype.npz"
    _write_zip(bad, members)
    msg = _load_into(m, bad)
    assert "does not support" in msg and str(arr.dtype) in msg, msg


def test_plain_text_file_is_not_called_a_pickle(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello, this is not a checkpoint\n")
    with pytest.raises(GradkitError) as e:
        gk.load(path)
    msg = str(e.value)
    assert "pickle" not in msg and "not an .npz" in msg and str(path) in msg, msg
    path.write_bytes(pickle.dumps({"w": 1}))   # a real pickle still says so
    with pytest.raises(GradkitError, match="pickle"):
        gk.load(path)


def test_duplicate_member_names_are_refused(good, tmp_path):
    m, path = good
    members = _members(path)
    victim = next(n for n in members if n != "__gradkit__.npy")
    bad = tmp_path / "dup.npz"
    import warnings
    with zipfile.ZipFile(bad, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # zipfile: "Duplicate name"
        for name, data in members.items():
            z.writestr(name, data)
        z.writestr(victim, _npy(np.full(to_np(gk.load(path)[victim[:-4]]).shape, 7.0,
                                        np.float32)))
    assert "appears twice" in _load_into(m, bad)


def test_deeply_nested_metadata_is_refused_clearly(good, tmp_path):
    m, path = good
    members = _members(path)
    meta = json.loads(np.lib.format.read_array(io.BytesIO(members["__gradkit__.npy"])).tobytes())
    meta["tree"]["__dict__"].append(["deep", "DEEP"])
    deep = '{"__list__":[' * 450 + "1" + "]}" * 450      # 900 JSON levels
    text = json.dumps(meta).replace('"DEEP"', deep)
    members["__gradkit__.npy"] = _npy(np.frombuffer(text.encode(), np.uint8))
    bad = tmp_path / "deep.npz"
    _write_zip(bad, members)
    assert "nested too deeply" in _load_into(m, bad)
    members["__gradkit__.npy"] = _npy(np.frombuffer(
        b'{"format":"gradkit.save","version":1,"tree":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        np.uint8))
    _write_zip(bad, members)
    assert "nested too deeply" in _load_into(m, bad)
