"""A real headless browser for the page tests: Debian's chromium driven by Playwright.

Playwright (not Selenium) because it reports uncaught page errors and console errors as
events, waits for the page by itself and needs no separate driver binary; it drives the
system's chromium through ``executable_path`` and never downloads a browser of its own.

Without chromium or playwright the tests skip, except in CI (``CI=true``), where they fail:
``.ci/run`` installs chromium, so a missing browser there is a broken setup, not a reason
to skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Flags for a sandboxed machine without network: no background connections, no GPU.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """``$CHROMIUM``, else Debian's ``chromium`` on the PATH."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session (a fresh profile: Playwright's own temp dir)."""
    missing = []
    exe = chromium_path()
    if exe is None:
        missing.append("Debian's chromium (apt-get install -y chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        reason = f"the browser tests need {' and '.join(missing)}"
        if _in_ci():
            pytest.fail(f"{reason}; in CI they must run, not skip", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def new_tab(browser: Any) -> Iterator[Callable[[], Any]]:
    """Opens fresh pages that record console errors and uncaught exceptions in ``.errors``."""
    contexts = []

    def open_tab() -> Any:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        contexts.append(context)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
               if m.type == "error" else None)
        tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        tab.errors = errors
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_tab: Callable[[], Any]) -> Any:
    """A fresh page (see ``new_tab``)."""
    return new_tab()
