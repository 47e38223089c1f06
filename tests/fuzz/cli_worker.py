"""A long-lived child process that runs the command lines on fuzzed inputs.

Run as ``python cli_worker.py``: it imports the toolkit once, prints one JSON line
``{"ready": true, "rss_kib": ...}``, then answers each request line (JSON)

``{"program": "aipoincare" | "bimt", "argv": [...], "files": {name: text}}``

with one JSON line ``{"rc", "stdout", "stderr", "seconds", "maxrss_kib"}``: the files are
written into a fresh folder, the command runs there through its ``main(argv)``, exactly as
the console script would run it. ``maxrss_kib`` is the peak resident memory of this process
so far (``getrusage``), which is how the fuzz test checks the memory budget.
"""

from __future__ import annotations


def _serve() -> None:
    import contextlib
    import io
    import json
    import os
    import resource
    import sys
    import tempfile
    import time
    from pathlib import Path

    import aipoincare.cli
    import bimt.cli
    import traincore  # noqa: F401  (imported once here, as the console scripts do)

    mains = {"aipoincare": aipoincare.cli.main, "bimt": bimt.cli.main}
    out = sys.stdout
    home = os.getcwd()

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    options = {a for action in aipoincare.cli.build_parser()._subparsers._group_actions
               for sub in action.choices.values() for act in sub._actions
               for a in act.option_strings}
    print(json.dumps({"ready": True, "rss_kib": peak(),
                      "time_limit_option": "--time-limit" in options}), file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
            for name, text in req.get("files", {}).items():
                Path(folder, name).write_text(text, encoding="utf-8", errors="surrogatepass")
            os.chdir(folder)
            stdout, stderr = io.StringIO(), io.StringIO()
            start = time.perf_counter()
            try:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    rc = mains[req["program"]](req["argv"])
            except BaseException as exc:  # noqa: BLE001 - escaping main() is the finding
                rc = f"escaped: {type(exc).__name__}: {exc}"
            finally:
                os.chdir(home)
            paths = sorted(Path(folder).rglob("*"))
            files = [str(p.relative_to(folder)) for p in paths]
            texts = {str(p.relative_to(folder)): p.read_text(errors="replace")
                     for p in paths if p.suffix == ".json" and p.is_file()}
        reply = {"rc": rc, "stdout": stdout.getvalue()[-2000:],
                 "stderr": stderr.getvalue()[-4000:], "files": files, "json": texts,
                 "seconds": time.perf_counter() - start, "maxrss_kib": peak()}
        print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    _serve()
