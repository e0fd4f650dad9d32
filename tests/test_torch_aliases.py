"""Names torch keeps that PyTorch programs still use: autograd.Variable,
cuda.manual_seed(_all), set/get_default_device, inference_mode, and the
gk.backends flag modules beside the internal backend package."""
import pytest

import gradkit as gk


def test_variable_returns_a_detached_tensor():
    x = gk.randn(3, requires_grad=True)
    y = x * 2
    v = gk.autograd.Variable(y)
    assert isinstance(v, gk.Tensor) and v.grad_fn is None and not v.requires_grad
    assert isinstance(x, gk.autograd.Variable) and not isinstance(3, gk.autograd.Variable)
    w = gk.autograd.Variable(gk.ones(2), requires_grad=True)
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    v.add_(1.0)                      # shares memory with y, as torch
    assert (y - v).abs().max().item() == 0.0
    with pytest.raises(TypeError, match="has to be a tensor"):
        gk.autograd.Variable([1.0])


def test_inference_mode_forms():
    x = gk.randn(2, requires_grad=True)
    with gk.inference_mode():
        assert gk.is_inference_mode_enabled() and not gk.is_grad_enabled()
        assert not (x * 2).requires_grad
    assert gk.is_grad_enabled() and not gk.is_inference_mode_enabled()

    @gk.inference_mode
    def bare(a):
        return a * 2

    @gk.inference_mode()
    def called(a):
        return a * 2

    @gk.inference_mode(False)
    def off(a):
        return a * 2
    assert not bare(x).requires_grad and not called(x).requires_grad
    assert off(x).requires_grad
    with gk.inference_mode(False):
        assert (x * 2).requires_grad

    @gk.inference_mode()
    def gen(a):
        yield a * 2
        yield a * 3
    assert [t.requires_grad for t in gen(x)] == [False, False]


def test_cuda_seeding_is_safe_without_cuda():
    gk.cuda.manual_seed(3)
    gk.cuda.manual_seed_all(3)
    assert gk.cuda.current_device() == 0
    gk.cuda.empty_cache()
    if gk.cuda.is_available():
        gk.cuda.manual_seed_all(11)
        a = gk.randn(4, device="cuda").tolist()
        gk.cuda.manual_seed_all(11)
        assert gk.randn(4, device="cuda").tolist() == a


def test_default_device(device):
    try:
        gk.set_default_device(device)
        assert gk.get_default_device() == device
        for t in (gk.zeros(2), gk.randn(2), gk.tensor([1.0, 2.0]), gk.arange(3),
                  gk.nn.Linear(2, 3).weight):
            assert t.device == device
        assert gk.zeros(1, device="cpu").device == "cpu"
    finally:
        gk.set_default_device(None)
    assert gk.zeros(1).device == "cpu" and gk.get_default_device() == "cpu"


def test_backends_flags_beside_the_backend_package():
    assert gk.backends.mps.is_available() is False and gk.backends.mps.is_built() is False
    old = (gk.backends.cudnn.benchmark, gk.backends.cudnn.deterministic)
    try:
        gk.backends.cudnn.benchmark = True
        gk.backends.cudnn.deterministic = True
        import gradkit.backends.cudnn as cudnn
        assert cudnn.benchmark is True and cudnn.deterministic is True
    finally:
        gk.backends.cudnn.benchmark, gk.backends.cudnn.deterministic = old
    assert gk.backends.cudnn.is_available() is False
    gk.backends.cuda.matmul.allow_tf32 = True
    assert gk.backends.cuda.matmul.allow_tf32 is True
    gk.backends.cuda.matmul.allow_tf32 = False
    # the internal backend package still works
    assert gk.backends.get("cpu").type == "cpu"
    assert (gk.ones(2) * 2).tolist() == [2.0, 2.0]


def test_aliases_match_torch_names():
    torch = pytest.importorskip("torch")
    for mod, names in [(gk, ["set_default_device", "get_default_device", "inference_mode",
                             "is_inference_mode_enabled", "Generator"]),
                       (gk.cuda, ["manual_seed", "manual_seed_all", "current_device",
                                  "empty_cache"]),
                       (gk.autograd, ["Variable"])]:
        tmod = {gk: torch, gk.cuda: torch.cuda, gk.autograd: torch.autograd}[mod]
        for n in names:
            assert hasattr(tmod, n) and hasattr(mod, n), n
    assert torch.backends.mps.is_available() == gk.backends.mps.is_available()
