"""Regenerate the pictures of the concept pages (``docs/_static/figures/``).

Run from the repository root when the algorithms change::

    .venv/bin/python docs/figures.py

The documentation build never runs this (it only shows the committed PNGs), so the build
stays fast and executes no toolkit code beyond autodoc's imports.
"""

from __future__ import annotations

from pathlib import Path

import aipoincare
import bimt

OUT = Path(__file__).resolve().parent / "_static" / "figures"
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    system = aipoincare.load_system(ROOT / "examples" / "lotka_volterra_3.toml")
    lv = aipoincare.discover(system, degree=3, seed=0)
    aipoincare.plot_discovery(lv, OUT / "lotka_volterra_3.png", dpi=70)

    fluid = aipoincare.load_system(ROOT / "examples" / "fluid_3d.toml")
    aipoincare.plot_discovery(aipoincare.discover(fluid, degree=3, seed=0, spectrum=True),
                              OUT / "fluid_3d.png",
                              dpi=55)

    task = bimt.get_task("independence")
    data = task.make(seed=0)
    model = bimt.build_model(task, seed=0)
    bimt.train(model, data.x_train, data.y_train, steps=task.steps, seed=0,
               x_test=data.x_test, y_test=data.y_test, progress=False, **task.overrides)
    bimt.draw(model, OUT / "bimt_independence.png", dpi=90)
    print("\n".join(str(p.relative_to(ROOT)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
