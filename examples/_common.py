"""Small helpers shared by the examples: a progress bar with the running loss
(tqdm when installed, a plain one otherwise), a loss-curve PNG (matplotlib when
installed, otherwise a hint), and the usual command-line flags."""
import math
import os
import sys
import time

import gradkit as gk
import gradkit.nn.functional as F

from gradkit.argtypes import (check_device, device_name, nonnegative_float, nonnegative_int,
                              positive_int)

try:
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # tqdm is optional
    _tqdm = None


#: where the examples write what they make (weights, loss curves, graph pictures)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def add_common_args(ap, steps, lr):
    """--device, --steps, --lr, --seed, --out-dir, --no-plot (each validated:
    a bad value is one line of usage error and exit status 2)."""
    ap.add_argument("--device", type=device_name, default="cpu",
                    help="cpu (default), cuda or cuda:N")
    ap.add_argument("--steps", type=positive_int, default=steps,
                    help=f"optimizer steps, >= 1 (default {steps})")
    ap.add_argument("--lr", type=nonnegative_float, default=lr, help=f"learning rate (default {lr})")
    ap.add_argument("--seed", type=nonnegative_int, default=0)
    ap.add_argument("--out-dir", default=OUT_DIR,
                    help="where outputs go (default: examples/out next to this script)")
    ap.add_argument("--no-plot", action="store_true", help="do not write the loss-curve PNG")
    return ap


def parse(ap, argv, check=None):
    """``ap.parse_args(argv)``, then the checks argparse types can't make alone:
    ``check(args)`` (an error message or None), CUDA usable when asked for, the
    output folder writable. Prints where outputs go."""
    args = ap.parse_args(argv)
    problem = check(args) if check is not None else None
    if problem:
        ap.error(problem)
    if args.device != "auto":
        check_device(ap.prog, args.device)
    if getattr(args, "out_dir", None) is not None:
        try:
            os.makedirs(args.out_dir, exist_ok=True)
        except OSError as e:
            ap.error(f"argument --out-dir: can't create {args.out_dir!r}: {e.strerror or e}")
        if not os.access(args.out_dir, os.W_OK):
            ap.error(f"argument --out-dir: {args.out_dir!r} is not writable")
        print(f"outputs go to {os.path.abspath(args.out_dir)}")
    return args


class Progress:
    """``p = Progress(total, "train"); p.update(loss); p.close()``.

    Shows the running loss (an exponential moving average, bias-corrected).
    Without tqdm it redraws one line on a terminal and prints ten lines when
    the output is a pipe or a file.
    """

    def __init__(self, total, desc="train", smoothing=0.9):
        self.total = total
        self.desc = desc
        self.n = 0
        self.smoothing = smoothing
        self._avg = 0.0
        self.running = math.nan
        self.t0 = time.perf_counter()
        self._bar = _tqdm(total=total, desc=desc, dynamic_ncols=True) if _tqdm else None
        self._tty = sys.stdout.isatty()
        self._last_draw = 0.0
        self._next_line = 0

    def update(self, loss):
        self.n += 1
        b = self.smoothing
        self._avg = b * self._avg + (1 - b) * float(loss)
        self.running = self._avg / (1 - b ** self.n)
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {self.running:.4f}", refresh=False)
            self._bar.update(1)
            return
        now = time.perf_counter()
        if self._tty:
            if now - self._last_draw > 0.1 or self.n == self.total:
                self._last_draw = now
                sys.stdout.write("\r" + self._line(now))
                sys.stdout.flush()
        elif self.n >= self._next_line or self.n == self.total:
            print(self._line(now), flush=True)
            self._next_line = self.n + max(1, self.total // 10)

    def _line(self, now):
        frac = self.n / self.total if self.total else 1.0
        width = 24
        full = int(frac * width)
        bar = "=" * full + (">" if full < width else "") + " " * (width - full - 1)
        return (f"{self.desc} {self.n:>{len(str(self.total))}}/{self.total} [{bar}] "
                f"{100 * frac:3.0f}%  loss {self.running:.4f}  {now - self.t0:.1f}s")

    def close(self):
        if self._bar is not None:
            self._bar.close()
        elif self._tty:
            sys.stdout.write("\n")
            sys.stdout.flush()


def save_loss_curve(losses, path, title, extra=None):
    """Write a PNG of the per-step loss (and its running mean) with matplotlib.

    ``extra``: optional ``(label, xs, ys)`` drawn as a second line (e.g. the
    validation loss). Returns the path, or None (after saying how to get one)
    when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no loss-curve PNG: matplotlib is not installed; `pip install matplotlib` "
              "to get one)")
        return None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(range(1, len(losses) + 1), losses, color="#9fc5e8", lw=0.8, label="loss per step")
    k = max(1, len(losses) // 50)
    if k > 1 and len(losses) > 2 * k:
        mean = [sum(losses[i - k:i]) / k for i in range(k, len(losses) + 1)]
        ax.plot(range(k, len(losses) + 1), mean, color="#0b5394", lw=1.6,
                label=f"mean of {k} steps")
    if extra is not None:
        label, xs, ys = extra
        ax.plot(xs, ys, "o-", color="#cc0000", lw=1.2, ms=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote the loss curve to {path}")
    return path


def sync(device):
    """Wait for queued GPU work so that timings are honest (no-op on cpu)."""
    if str(device).startswith("cuda"):
        import gradkit as gk
        gk.cuda.synchronize()


def train_classifier(model, opt, data, args, evaluate, augment=None):
    """The digits examples' training loop: ``args.steps`` AdamW steps on random
    batches (``augment`` applied to each), a progress bar, a held-out evaluation every
    ``args.eval_every`` steps, then the report. Returns ``(losses, evals, test_acc)``."""
    x_train, y_train, x_test, y_test = data
    dev, n = args.device, x_train.shape[0]
    losses, evals = [], ([], [])
    bar = Progress(args.steps, "train")
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = gk.randint(0, n, (args.batch_size,), device=dev)
        xb = x_train[idx]
        loss = F.cross_entropy(model(augment(xb) if augment else xb), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.update(losses[-1])
        if step % args.eval_every == 0 and step < args.steps:
            evals[0].append(step)
            evals[1].append(evaluate(model, x_test, y_test)[0])
    sync(dev)
    seconds = time.perf_counter() - t0
    bar.close()

    test_loss, test_acc = evaluate(model, x_test, y_test)
    evals[0].append(args.steps)
    evals[1].append(test_loss)
    _, train_acc = evaluate(model, x_train, y_train)
    n_test = y_test.shape[0]
    print(f"trained in {seconds:.1f} s ({1000 * seconds / args.steps:.2f} ms per step)")
    print(f"final running loss {bar.running:.4f}; held-out loss {test_loss:.4f}")
    print(f"train accuracy {100 * train_acc:.1f}%")
    print(f"test accuracy {100 * test_acc:.1f}% ({round(test_acc * n_test)}/{n_test} held-out "
          "images)")
    return losses, evals, test_acc
