"""Sphinx configuration for gradkit's documentation site.

Build it: ``pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html``.
The API reference pages (``docs/api/``) are generated at each build from
``public_api.py``, the same list ``tests/test_docs.py`` checks for docstrings.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import public_api  # noqa: E402

project = "gradkit"
author = "the gradkit developers"
copyright = "2026, the gradkit developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.doctest", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "ARCHITECTURE.md", "*.png", "*.svg"]
html_theme = "alabaster"
html_static_path = []
autodoc_member_order = "alphabetical"
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
doctest_global_setup = "import gradkit as gk\nimport gradkit.nn as nn\n"


def _slug(mod):
    return mod.replace(".", "_")


def _write_api_pages():
    out = os.path.join(HERE, "api")
    os.makedirs(out, exist_ok=True)
    index = ["API reference", "=============", "", ".. toctree::", "   :maxdepth: 1", ""]
    seen = set()  # an object exported by several modules is shown on its first page
    for mod, title in public_api.modules():
        index.append(f"   {_slug(mod)}")
        lines = [title, "=" * len(title), "", f".. module:: {mod}", "    :no-index:", ""]
        m = __import__(mod, fromlist=["_"])
        for name in public_api.names(mod):
            obj = getattr(m, name)
            full = f"{mod}.{name}"
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            opts = ""
            if isinstance(obj, type):
                if full in public_api.METHOD_CLASSES:
                    opts += "    :members: " + ", ".join(public_api.methods(full)) + "\n"
                lines.append(f".. autoclass:: {full}\n{opts}")
            else:
                lines.append(f".. autofunction:: {full}\n{opts}")
        with open(os.path.join(out, _slug(mod) + ".rst"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "index.rst"), "w") as f:
        f.write("\n".join(index) + "\n")


_write_api_pages()
