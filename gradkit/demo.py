"""The digits data set that ships with gradkit, and the MLP demo that trains on it.

``load_digits()`` reads ``gradkit/data/digits.csv.gz``: the UCI optical
handwritten digits (1797 images of 8x8 pixels, values 0..16, labels 0-9; see
``gradkit/data/DIGITS_LICENSE.txt``). ``train_mlp()`` is what
``python -m gradkit demo`` runs; ``examples/train_mlp.py`` is the longer,
commented version of the same training.
"""
import csv
import gzip
import os
import random
import time
from . import nn, optim
from .autograd import no_grad
from .creation import manual_seed, randint
from .creation import tensor
from .tensor import float32, int64

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.csv.gz")


def load_digits(device="cpu", test_fraction=0.2, seed=0):
    """``(x_train, y_train, x_test, y_test)`` as gradkit tensors on ``device``.

    Pixels are scaled to [0, 1] (float32, shape (n, 64)); labels are int64.
    The split is a seeded shuffle, so it is the same on every run and device.
    """

    if not os.path.exists(DIGITS_PATH):
        raise FileNotFoundError(f"gradkit: the digits data file is missing: {DIGITS_PATH}; "
                                "reinstall gradkit (it ships in the package data)")
    with gzip.open(DIGITS_PATH, "rt") as f:
        rows = [[int(float(v)) for v in r] for r in csv.reader(f) if r]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = int(round(len(rows) * test_fraction))
    test, train = order[:n_test], order[n_test:]

    def tensors(idx):
        x = tensor([[v / 16.0 for v in rows[i][:64]] for i in idx], dtype=float32, device=device)
        y = tensor([rows[i][64] for i in idx], dtype=int64, device=device)
        return x, y

    return (*tensors(train), *tensors(test))


def ascii_digit(x):
    """An 8x8 image (64 values in [0, 1]) as 8 lines of text."""
    shades = " .:-=+*#%@"
    vals = [float(v) for v in x]
    return ["".join(shades[min(9, int(v * 9.999))] * 2 for v in vals[r * 8:(r + 1) * 8])
            for r in range(8)]


def train_mlp(device="cpu", steps=600, batch_size=64, lr=3e-3, hidden=128, seed=0,
              on_step=None):
    """Train a 64-``hidden``-10 ReLU MLP with Adam and cross-entropy.

    ``on_step(step, loss)`` is called after each step with the loss as a float.
    Returns a dict: model, losses, test_accuracy, train_accuracy, seconds,
    device, and the data tensors.
    """

    manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits(device, seed=seed)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)).to(device)
    opt = optim.Adam(model.parameters(), lr=lr)
    n = x_train.shape[0]
    losses = []
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        idx = randint(0, n, (batch_size,), device=device)
        loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss = loss.item()
        losses.append(loss)
        if on_step is not None:
            on_step(step, loss)
    seconds = time.perf_counter() - t0

    model.eval()
    with no_grad():
        test_acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        train_acc = (model(x_train).argmax(1) == y_train).float().mean().item()
    return {"model": model, "losses": losses, "test_accuracy": test_acc,
            "train_accuracy": train_acc, "seconds": seconds, "device": str(device),
            "data": (x_train, y_train, x_test, y_test)}
