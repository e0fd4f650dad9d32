"""Train a LeNet-style CNN on real handwritten digits, with gk.nn and gk.optim.

The data set ships with gradkit (gradkit/data/digits.csv.gz): the UCI optical
handwritten digits, 1797 images of 8x8 pixels, labels 0-9; a seeded shuffle holds
out 20% (359 images) for the test accuracy. The images stay 8x8, so the net is
LeNet's shape at that scale: two blocks of 3x3 convolution (padding 1), batch
normalization, ReLU and 2x2 max-pooling (8x8 -> 4x4 -> 2x2), then two linear
layers; random shifts by one pixel augment the training batches.

    python examples/train_cnn.py                  # cpu: ~98% test accuracy
    python examples/train_cnn.py --device cuda    # on a GPU

Prints a progress bar with the running loss and, at the end, the train and test
accuracy; saves the trained weights (parameters and batch-norm running
statistics) with gk.save and checks that a fresh model reloads them; writes
cnn_loss.png (matplotlib) with the held-out loss measured every --eval-every steps.
"""
import os
# Before NumPy loads: small GEMMs, where BLAS threads cost more than they give (see
# train_mlp.py). Set the variables yourself to override.
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F
from gradkit.demo import load_digits

from _common import add_common_args, parse, save_loss_curve, train_classifier
from gradkit.argtypes import nonnegative_float, positive_int


class LeNet(nn.Module):
    def __init__(self, c1=16, c2=32, hidden=64, n_out=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * 2 * 2, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):                                    # x: (N, 1, 8, 8)
        x = self.pool(F.relu(self.bn1(self.conv1(x))))       # (N, c1, 4, 4)
        x = self.pool(F.relu(self.bn2(self.conv2(x))))       # (N, c2, 2, 2)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(x)


def shift(x):
    """Each image moved by -1, 0 or +1 pixel in both directions (zero fill): the
    whole batch at once, as a padded crop at a random offset."""
    n = x.shape[0]
    pad = gk.zeros(n, 1, 10, 10, device=x.device)
    pad[:, :, 1:9, 1:9] = x
    dy, dx = (int(v) for v in gk.randint(0, 3, (2,)).tolist())
    return pad[:, :, dy:dy + 8, dx:dx + 8]


@gk.no_grad()
def evaluate(model, x, y):
    """(mean cross-entropy, accuracy) on a whole split, in eval mode."""
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def _check(args):
    """What argparse's types can't say alone (a zero learning rate trains nothing)."""
    return None if args.lr > 0 else f"argument --lr: must be positive, got {args.lr}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, steps=600, lr=3e-3)
    ap.add_argument("--batch-size", type=positive_int, default=64)
    ap.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    ap.add_argument("--eval-every", type=positive_int, default=100)
    args = parse(ap, argv, _check)

    gk.manual_seed(args.seed)
    dev = args.device
    x_train, y_train, x_test, y_test = load_digits(dev)   # the same split every run
    x_train = x_train.reshape(-1, 1, 8, 8)
    x_test = x_test.reshape(-1, 1, 8, 8)
    n = x_train.shape[0]
    print(f"digits: {n} training and {x_test.shape[0]} held-out images of 8x8 pixels, "
          f"on {dev}")

    model = LeNet().to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: conv3x3(16)-bn-relu-pool, conv3x3(32)-bn-relu-pool, 128-64-10, "
          f"{n_params} parameters; AdamW lr {args.lr}, batch {args.batch_size}, "
          f"{args.steps} steps")
    opt = gk.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    losses, evals, test_acc = train_classifier(
        model, opt, (x_train, y_train, x_test, y_test), args, evaluate, augment=shift)

    # gk.save / gk.load round trip (batch-norm buffers included): same accuracy.
    path = os.path.join(args.out_dir, "cnn_digits.npz")
    gk.save(model.state_dict(), path)
    clone = LeNet().to(dev)
    clone.load_state_dict(gk.load(path))
    same = evaluate(clone, x_test, y_test)[1] == test_acc
    print(f"saved the weights to {path}; reloaded model's test accuracy "
          f"{'matches' if same else 'DIFFERS'}")

    if not args.no_plot:
        save_loss_curve(losses, os.path.join(args.out_dir, "cnn_loss.png"),
                        f"LeNet-style CNN on the UCI digits: test accuracy {100 * test_acc:.1f}%",
                        extra=("held-out loss", evals[0], evals[1]))
    return test_acc


if __name__ == "__main__":
    main()
