"""Regenerate the explorer screenshot of docs/explore.md (``_static/figures/bimt_explorer.png``).

Run from the repository root (needs Debian's chromium and the extras ``explore`` and
``test``; about a minute)::

    .venv/bin/python docs/explorer_screenshot.py

It trains the ``independence`` task at full size with ``bimt train --html``, opens the page
in headless chromium and hovers one hidden neuron of the first module.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bimt.cli import main as bimt_main

OUT = Path(__file__).resolve().parent / "_static" / "figures" / "bimt_explorer.png"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# page position of a point of the node trace (the last trace), from plotly's axes
PIXEL_OF = """(hidden) => {
  const gd = document.getElementById('bimt-explorer');
  const t = gd.data[gd.data.length - 1];
  const i = t.hovertext.findIndex(h => h.includes('hidden') && h.includes('module 0'));
  const s = gd._fullLayout._size, box = gd.getBoundingClientRect();
  return [box.left + s.l + gd._fullLayout.xaxis.d2p(t.x[i]),
          box.top + s.t + gd._fullLayout.yaxis.d2p(t.y[i])];
}"""


def main() -> None:
    run = Path(tempfile.mkdtemp()) / "independence"
    if bimt_main(["train", "independence", "--out", str(run), "--html"]) != 0:
        sys.exit("training failed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 780})
        page.goto((run / "network.html").as_uri())
        page.wait_for_selector("#bimt-explorer .scatterlayer .point", state="attached")
        page.mouse.move(*page.evaluate(PIXEL_OF, True))
        page.wait_for_selector(".hoverlayer .hovertext")
        page.screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
