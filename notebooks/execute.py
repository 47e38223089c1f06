"""Execute the tutorial notebooks in place, to refresh their stored outputs.

Usage (from the repository root)::

    .venv/bin/python notebooks/execute.py              # every notebook, full size
    .venv/bin/python notebooks/execute.py 01 04        # only notebooks whose name starts so
    .venv/bin/python notebooks/execute.py --quick      # with AIPOINCARE_QUICK=1 BIMT_QUICK=1

Full size is the default: the committed notebooks carry the outputs of a full run so that
they read well on the web. The test suite (``tests/test_notebooks.py``) executes temporary
copies under the quick switch instead and never writes here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
QUICK_VARS = ("AIPOINCARE_QUICK", "BIMT_QUICK")
#: A committed notebook larger than this does not read well on the web (issue 5).
MAX_BYTES = 2_000_000


def execute(path: Path, *, quick: bool = False, timeout: int = 3600) -> float:
    """Execute one notebook in place (kernel ``python3``, working directory ``notebooks/``).

    Returns the seconds it took. Raises ``nbclient.exceptions.CellExecutionError`` on the
    first failing cell, leaving the file untouched.
    """
    for var in QUICK_VARS:
        if quick:
            os.environ[var] = "1"
        else:
            os.environ.pop(var, None)
    # figures inline in the stored outputs, whatever the calling shell sets
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False)  # no timestamps: small, stable diffs
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose name starts so")
    parser.add_argument("--quick", action="store_true",
                        help="set AIPOINCARE_QUICK=1 and BIMT_QUICK=1 (not for committing)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = sorted(p for p in HERE.glob("*.ipynb")
                   if not args.prefixes or any(p.name.startswith(s) for s in args.prefixes))
    if not paths:
        print(f"error: no notebook in {HERE} matches {args.prefixes}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"{path.name}: running{' (quick)' if args.quick else ''} ...", flush=True)
        seconds = execute(path, quick=args.quick, timeout=args.timeout)
        size = path.stat().st_size
        flag = "  TOO BIG for the web (> 2 MB)" if size > MAX_BYTES else ""
        print(f"{path.name}: {seconds:.1f} s, {size / 1e6:.2f} MB{flag}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
