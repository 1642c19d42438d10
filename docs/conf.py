"""Sphinx configuration of jaxgru's documentation: ``sphinx-build -W -n docs docs/_build``.

The API reference is generated from the docstrings (autodoc over the public
names alone, ``docs/api.md``); the pages are Markdown (MyST). The
build is strict: every warning is an error and every cross-reference to
jaxgru's own names must resolve (``nitpicky``). Every Python block of the pages
runs in the test suite (``tests/test_docs.py``).
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "experiments"))  # the config reference reads training/schema.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "ext"))

project = "jaxgru"
author = "jaxgru developers"
copyright = "2026, jaxgru developers"  # noqa: A001 - Sphinx's name

extensions = [
  "sphinx.ext.autodoc",
  "sphinx.ext.napoleon",  # Google-style docstrings: Args, Returns, Raises
  "sphinx.ext.intersphinx",
  "myst_parser",
  "config_reference",  # docs/ext/config_reference.py: the configs' keys, from their schema
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "ext"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_default_options = {"members": False, "show-inheritance": False}
autodoc_typehints = "none"  # the docstrings say the shapes and types; jax.Array's aliases would not resolve
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

nitpicky = True
# Only jaxgru's own names must resolve: references to the peers' and Python's types are written as
# plain text in the docstrings, and those that are not resolve through intersphinx where it can.
nitpick_ignore_regex = [(r"py:.*", r"^(?!jaxgru\.).*")]
intersphinx_mapping = {"python": ("https://docs.python.org/3", None)} if os.environ.get("JAXGRU_DOCS_ONLINE") else {}

html_theme = "furo"
html_title = "jaxgru"
