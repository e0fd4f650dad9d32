"""Train an MLP classifier on real handwritten digits, with gk.nn and gk.optim.

The data set ships with gradkit (gradkit/data/digits.csv.gz): the UCI optical
handwritten digits, 1797 images of 8x8 pixels (values 0..16), labels 0-9.
A seeded shuffle holds out 20% (359 images) for the test accuracy.

    python examples/train_mlp.py                  # cpu, a few seconds: ~97% test accuracy
    python examples/train_mlp.py --device cuda    # on a GPU

Prints a progress bar with the running loss and, at the end, the train and
test accuracy; saves the trained weights (mlp_digits.npz) with gk.save and
checks that gk.load gives them back; writes mlp_loss.png (matplotlib) with the
held-out loss measured every --eval-every steps. Both go to examples/out/
(``--out-dir`` to change); their paths are printed.
"""
import os
# Before NumPy loads: these models multiply small matrices, where BLAS threads cost
# more than they give, and on a busy 2-core machine OpenBLAS's spinning threads make
# a step several times slower. Set the variables yourself to override.
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F
from gradkit.demo import load_digits

from _common import add_common_args, parse, save_loss_curve, train_classifier
from gradkit.argtypes import nonnegative_float, positive_int


class MLP(nn.Module):
    def __init__(self, n_in=64, hidden=128, n_out=10, dropout=0.1):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.drop(F.relu(self.fc1(x)))
        x = self.drop(F.relu(self.fc2(x)))
        return self.out(x)


@gk.no_grad()
def evaluate(model, x, y):
    """(mean cross-entropy, accuracy) on a whole split, in eval mode."""
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, steps=1500, lr=2e-3)
    ap.add_argument("--hidden", type=positive_int, default=128)
    ap.add_argument("--batch-size", type=positive_int, default=64)
    ap.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    ap.add_argument("--eval-every", type=positive_int, default=250)
    args = parse(ap, argv)

    gk.manual_seed(args.seed)
    dev = args.device
    x_train, y_train, x_test, y_test = load_digits(dev)   # the same split every run
    n = x_train.shape[0]
    print(f"digits: {n} training and {x_test.shape[0]} held-out images of 8x8 pixels, "
          f"on {dev}")

    model = MLP(hidden=args.hidden).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: 64-{args.hidden}-{args.hidden}-10 ReLU MLP, {n_params} parameters; "
          f"AdamW lr {args.lr}, batch {args.batch_size}, {args.steps} steps")
    opt = gk.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    losses, evals, test_acc = train_classifier(
        model, opt, (x_train, y_train, x_test, y_test), args, evaluate)

    # gk.save / gk.load round trip: a fresh model with the loaded weights agrees.
    path = os.path.join(args.out_dir, "mlp_digits.npz")
    gk.save(model.state_dict(), path)
    clone = MLP(hidden=args.hidden).to(dev)
    clone.load_state_dict(gk.load(path))
    same = evaluate(clone, x_test, y_test)[1] == test_acc
    print(f"saved the weights to {path}; reloaded model's test accuracy "
          f"{'matches' if same else 'DIFFERS'}")

    if not args.no_plot:
        save_loss_curve(losses, os.path.join(args.out_dir, "mlp_loss.png"),
                        f"MLP on the UCI digits: test accuracy {100 * test_acc:.1f}%",
                        extra=("held-out loss", evals[0], evals[1]))
    return test_acc


if __name__ == "__main__":
    main()
