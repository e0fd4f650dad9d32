"""Command-line argument types shared by ``python -m gradkit`` and the examples:
an ordinary mistake (``--steps 0``, ``--device cuda`` without a GPU, an
unwritable ``--out``) gets one clear line and exit status 2, never a traceback.

Use them as argparse ``type=`` callables (``ap.add_argument("--steps",
type=positive_int)``); ``check_device(prog, name)`` runs after parsing.
"""
import argparse
import os
import sys

from . import cuda

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "device_name", "check_device", "picture_path", "PICTURE_FORMATS"]

PICTURE_FORMATS = ("svg", "png", "pdf", "dot")


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text):
    """An int >= 1 (steps, batch sizes, widths)."""
    v = _number(int, text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {v}")
    return v


def nonnegative_int(text):
    """An int >= 0."""
    v = _number(int, text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_float(text):
    """A finite float > 0 (learning rates)."""
    v = _number(float, text)
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def nonnegative_float(text):
    """A finite float >= 0 (weight decay, dropout)."""
    v = _number(float, text)
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def device_name(text):
    """'cpu', 'cuda', 'cuda:N' (and 'auto' where a command offers it)."""
    t = text.strip().lower()
    if t in ("cpu", "cuda", "auto") or (t.startswith("cuda:") and t[5:].isdigit()):
        return t
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda or cuda:N")


def check_device(prog, name):
    """After parsing: exit 2 with one line when a cuda device is asked for and
    CUDA is not usable here (as ``gradkit demo`` does)."""
    if name.startswith("cuda"):
        if not cuda.is_available():
            print(f"{prog}: --device {name} was asked for, but CUDA is not usable: "
                  f"{cuda.why_unavailable()}", file=sys.stderr)
            sys.exit(2)
        idx = int(name[5:]) if name.startswith("cuda:") else 0
        n = cuda.device_count()
        if idx >= n:
            print(f"{prog}: --device {name} was asked for, but this machine has {n} CUDA "
                  f"device(s) (cuda:0..cuda:{n - 1})", file=sys.stderr)
            sys.exit(2)
    return name


def picture_path(text):
    """A path ending in .svg, .png, .pdf or .dot whose folder exists and is writable."""
    ext = os.path.splitext(text)[1].lstrip(".").lower()
    if ext not in PICTURE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the file name must end in one of "
            f"{', '.join('.' + f for f in PICTURE_FORMATS)}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {folder} is not writable")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    return text
