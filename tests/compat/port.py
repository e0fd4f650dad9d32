"""Port a PyTorch program to gradkit by rewriting its import lines only.

``port_source(text)`` turns ``import torch`` into ``import gradkit as torch``,
``import torch.nn as nn`` into ``import gradkit.nn as nn``, ``from torch.utils.data
import X`` into ``from gradkit.utils.data import X`` and so on. Nothing else in the
program changes: that is the test (a program runs on gradkit when its imports do).

Run a program both ways from the command line::

    python tests/compat/port.py PROGRAM.py [ARGS...]          # run the gradkit port
    python tests/compat/port.py --print PROGRAM.py            # show the ported text
"""
import os
import re
import subprocess
import sys
import tempfile

_IMPORT_AS = re.compile(r"^(\s*)import torch(\.[\w.]+)? as (\w+)\s*$")
_IMPORT = re.compile(r"^(\s*)import torch(\.[\w.]+)?\s*$")
_FROM = re.compile(r"^(\s*)from torch(\.[\w.]+)? import (.+)$")


def port_source(text):
    """The program's text with each torch import line rewritten to gradkit."""
    out = []
    for line in text.splitlines():
        m = _IMPORT_AS.match(line)
        if m:
            line = f"{m.group(1)}import gradkit{m.group(2) or ''} as {m.group(3)}"
        elif _IMPORT.match(line):
            m = _IMPORT.match(line)
            if m.group(2):
                # `import torch.nn` binds `torch`: keep that name for the package
                line = f"{m.group(1)}import gradkit{m.group(2)}; import gradkit as torch"
            else:
                line = f"{m.group(1)}import gradkit as torch"
        else:
            m = _FROM.match(line)
            if m:
                line = f"{m.group(1)}from gradkit{m.group(2) or ''} import {m.group(3)}"
        out.append(line)
    return "\n".join(out) + "\n"


def run_program(path, args=(), framework="gradkit", timeout=300, cwd=None):
    """Run ``path`` (ported to gradkit, or as written for torch) in a fresh process.

    Returns ``(returncode, stdout, stderr)``."""
    with open(path) as f:
        text = f.read()
    if framework == "gradkit":
        text = port_source(text)
    with tempfile.TemporaryDirectory() as tmp:
        prog = os.path.join(tmp, os.path.basename(path))
        with open(prog, "w") as f:
            f.write(text)
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
        try:
            r = subprocess.run([sys.executable, prog, *args], cwd=cwd or tmp, env=env,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return 124, e.stdout or "", f"timed out after {timeout} s"
    return r.returncode, r.stdout, r.stderr


def results(stdout):
    """The ``RESULT name value`` lines a program printed, as a dict of floats."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "RESULT":
            out[parts[1]] = float(parts[2])
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "--print":
        with open(argv[1]) as f:
            sys.stdout.write(port_source(f.read()))
        sys.exit(0)
    if not argv:
        sys.exit(__doc__)
    rc, out, err = run_program(argv[0], argv[1:])
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)
