"""Documentation: every public name has a docstring, and the docstring table agrees
with the API. The site itself is built (warnings as errors) and its doctests run by
the docs leg of .ci/run."""
import os
import sys

import gradkit as gk
from gradkit import docstrings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs"))
import public_api  # noqa: E402


def test_every_public_name_has_a_docstring():
    missing = public_api.undocumented()
    assert not missing, f"{len(missing)} public names without a docstring: {missing}"


def test_docstring_table_names_public_ops():
    # every entry documents something that exists (no stale text for a renamed op)
    stale = [n for n in docstrings.DOCS if not callable(getattr(gk, n, None))]
    assert not stale, stale
    stale = [n for n in docstrings.TENSOR_DOCS if not hasattr(gk.Tensor, n)]
    assert not stale, stale


def test_function_and_method_forms_share_one_text():
    for name in docstrings.DOCS:
        meth = getattr(gk.Tensor, name, None)
        if callable(meth) and not isinstance(meth, type):
            assert (meth.__doc__ or "").strip(), f"Tensor.{name} has no docstring"
            fn = getattr(gk, name)
            fn = getattr(fn, "__wrapped__", fn)  # the op behind its out= wrapper
            if meth is fn:  # one table entry: one text (x.where(cond, y) is its own op)
                assert meth.__doc__ == fn.__doc__, f"Tensor.{name} and gk.{name} differ"


def test_help_says_something():
    import pydoc
    text = pydoc.render_doc(gk.exp, renderer=pydoc.plaintext)
    assert "exponential" in text and "PyTorch" in text
