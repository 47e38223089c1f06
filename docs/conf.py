"""Sphinx configuration of the physics-of-ai documentation.

Built by ``make docs`` (and ``make test``) as
``sphinx-build -W --keep-going -q -b html docs docs/_build/html``: warnings are errors.
The tutorials are the committed notebooks of ``notebooks/``, rendered with their stored
outputs and never executed here (``tests/test_notebooks.py`` executes them).
"""

from __future__ import annotations

import filecmp
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # autodoc imports the packages from the working tree

project = "physics-of-ai"
author = "physics-of-ai contributors"
copyright = "2026, physics-of-ai contributors"  # noqa: A001  (Sphinx's name)
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

# --- sources -----------------------------------------------------------------------------
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "tutorials/*.py"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- notebooks: rendered from their committed outputs, never executed here -----------------
nb_execution_mode = "off"
nb_merge_streams = True


def _sync_notebooks() -> None:
    """Mirror ``notebooks/*.ipynb`` (and the images they show) into ``docs/tutorials/``.

    Sphinx reads only files under its source folder; copying (only what changed) keeps
    incremental builds fast and the notebooks in one place in the repository.
    """
    src, dst = ROOT / "notebooks", DOCS / "tutorials"
    dst.mkdir(exist_ok=True)
    wanted = set()
    for path in sorted(src.glob("*.ipynb")) + sorted(src.glob("*.gif")) + sorted(src.glob("*.png")):
        wanted.add(path.name)
        target = dst / path.name
        if not target.exists() or not filecmp.cmp(path, target, shallow=False):
            shutil.copy2(path, target)
    for stale in list(dst.glob("*.ipynb")) + list(dst.glob("*.gif")) + list(dst.glob("*.png")):
        if stale.name not in wanted:
            stale.unlink()


_sync_notebooks()

# --- API reference -----------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"      # signatures stay short; types go to the parameter list
autodoc_typehints_description_target = "documented"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True       # show `seed=0`, not the evaluated object
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = False

# Docstrings write absolute values the mathematical way, |w| or |grad H . f|, which
# reStructuredText reads as substitution references (an error under -W). The packages never
# use substitutions, so escape such pipes outside code, roles and doctest blocks.
_SUBSTITUTION = re.compile(r"(?<![\\|])\|(?=\S)([^|`]*?\S)\|(?![|_])")
_CODE = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_pipes(app, what, name, obj, options, lines: list[str]) -> None:
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">>>"):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if in_doctest or "|" not in line:
            continue
        parts = _CODE.split(line)
        lines[i] = "".join(part if k % 2 else _SUBSTITUTION.sub(r"\\|\1\\|", part)
                           for k, part in enumerate(parts))


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _escape_pipes)


# --- output ------------------------------------------------------------------------------
html_theme = "furo"
html_title = "physics-of-ai"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
