"""A small MLP training step for the reliability tests (host-sync guard,
memory, threads). Two flavours of the same step:

- ``CoreMLP``: only core ops (matmul, relu, amax/exp/sum/log, integer-array
  indexing, in-place SGD under no_grad); runs everywhere, always.
- ``NnMLP``: gk.nn.Linear + gk.nn.functional.cross_entropy + gk.optim.SGD, as a
  user writes it.

Data and initial weights come from a seeded NumPy generator, so two runs with
the same seed are bit-identical.
"""
import numpy as np

import gradkit as gk

import gradkit.nn as _nn
import gradkit.optim as _optim

SIZES = (8, 16, 4)   # in, hidden, classes
BATCH = 12


def make_data(seed, device="cpu", n_batches=4):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
        y = rng.integers(0, SIZES[-1], size=BATCH).astype(np.int64)
        out.append((gk.tensor(x, device=device), gk.tensor(y, device=device)))
    return out


def _init(seed):
    rng = np.random.default_rng(seed)
    ws = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        ws.append(((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
                   np.zeros(b, np.float32)))
    return ws


def log_softmax_core(z):
    m = z.amax(dim=1, keepdim=True).detach()
    s = z - m
    return s - s.exp().sum(dim=1, keepdim=True).log()


class CoreMLP:
    def __init__(self, seed, device="cpu", lr=0.1):
        self.params = []
        for w, b in _init(seed):
            self.params += [gk.tensor(w, device=device, requires_grad=True),
                            gk.tensor(b, device=device, requires_grad=True)]
        self.lr = lr
        self.device = device

    def forward(self, x):
        w1, b1, w2, b2 = self.params
        return (x @ w1 + b1).relu() @ w2 + b2

    def loss(self, x, y):
        logp = log_softmax_core(self.forward(x))
        n = x.shape[0]
        return -logp[gk.arange(n, device=self.device), y].mean()

    def update(self):
        with gk.no_grad():
            for p in self.params:
                p.sub_(p.grad * self.lr)
                p.grad = None

    def step(self, x, y):
        loss = self.loss(x, y)
        loss.backward()
        self.update()
        return loss.detach()

    def state(self):
        return [p.detach()._B.to_host(p.array).copy() for p in self.params]


class NnMLP:
    # the same step as CoreMLP: loss(x, y); loss.backward(); update()
    def __init__(self, seed, device="cpu", lr=0.1):
        nn = _nn
        self.model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(),
                                   nn.Linear(SIZES[1], SIZES[2]))
        (w1, b1), (w2, b2) = _init(seed)
        # torch layout: Linear.weight is (out, in)
        with gk.no_grad():
            for p, v in zip(self.model.parameters(), (w1.T, b1, w2.T, b2)):
                p.copy_(gk.tensor(np.ascontiguousarray(v)))
        self.model.to(device)
        self.opt = _optim.SGD(self.model.parameters(), lr=lr)

    @property
    def params(self):
        return list(self.model.parameters())

    def forward(self, x):
        return self.model(x)

    def loss(self, x, y):
        return _nn.functional.cross_entropy(self.model(x), y)

    def update(self):
        self.opt.step()
        self.opt.zero_grad()

    def step(self, x, y):
        loss = self.loss(x, y)
        loss.backward()
        self.update()
        return loss.detach()

    def state(self):
        return [p.detach()._B.to_host(p.array).copy() for p in self.params]


FLAVOURS = ["core", "nn"]


def make_mlp(flavour, seed, device="cpu", lr=0.1):
    return (CoreMLP if flavour == "core" else NnMLP)(seed, device, lr)
