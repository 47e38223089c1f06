"""Fuzzing setup: hypothesis profiles, the command-line worker, and the tally of inputs.

Profiles (``FUZZ_PROFILE``): ``ci`` (default) is derandomized, so CI tries the same inputs
every time (about a minute in all); ``long`` (``make fuzz``) draws fresh inputs, many more
of them (``FUZZ_SCALE`` times the CI counts), and keeps failures in ``.hypothesis/`` so
that they replay first next time.

``FUZZ_COLLECT=FILE`` records every input that breaks a property in FILE (JSON lines) and
carries on, instead of stopping at the first one; the session then fails at its end if
anything was recorded. ``FUZZ_REPORT=FILE`` writes the tally below to FILE.
"""

from __future__ import annotations

import collections
import json
import os
import re
import selectors
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.large_base_example]
# ci: no shrinking (an input takes seconds: shrinking one failure could take many minutes);
# the failing input is reported as found
settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          print_blob=True, suppress_health_check=_HEALTH,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.register_profile("long", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=_HEALTH, verbosity=Verbosity.normal,
                          database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis")))
settings.load_profile(os.environ.get("FUZZ_PROFILE", "ci"))

#: Findings already written down (docs/reliability.md) and waiting for their fix: id, a
#: pattern of the broken property's message (and the input), what it is. A matching failure
#: is counted as "known ID" instead of failing the run (FUZZ_STRICT=1 fails on them too).
#: Remove an entry with its fix: the fuzz run then proves the fix on the same inputs.
KNOWN: list[tuple[str, str, str]] = [
    # none open: F1-F10 are fixed (docs/reliability.md; each pinned in
    # tests/reliability/test_findings.py)
]

#: The memory budget the fuzzed commands run under (TRAINCORE_MEMORY_BUDGET).
BUDGET_MIB = 768
#: Slack on top of the budget for what no estimate covers (interpreter, SymPy objects).
SLACK_MIB = 384


class Tally:
    """Counts of fuzzed inputs per target and outcome, printed at the end of the session."""

    def __init__(self) -> None:
        self.counts: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)
        self.slowest: dict[str, float] = collections.defaultdict(float)
        self.peak_mib: dict[str, float] = collections.defaultdict(float)
        self.seconds = 0.0  # setup + call time of the fuzz tests
        self.findings = 0
        self.details: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)

    def add(self, target: str, outcome: str, seconds: float = 0.0, peak_mib: float = 0.0,
            detail: str | None = None) -> None:
        self.counts[target][outcome] += 1
        if detail:
            self.details[target][" ".join(detail.split()[:7])] += 1
        self.slowest[target] = max(self.slowest[target], seconds)
        self.peak_mib[target] = max(self.peak_mib[target], peak_mib)

    def fail(self, target: str, message: str, given: object) -> str:
        """A property broke on ``given``: raise, or (a known finding, or FUZZ_COLLECT) return
        the outcome to count and go on."""
        for ident, pattern, _ in KNOWN:
            if (re.search(pattern, f"{message}\n{given!r}", re.S)
                    and os.environ.get("FUZZ_STRICT") != "1"):
                return f"known {ident}"
        collect = os.environ.get("FUZZ_COLLECT")
        if not collect:
            raise AssertionError(f"{message}\ninput: {given!r}"[:6000])
        self.findings += 1
        with open(collect, "a") as fh:
            fh.write(json.dumps({"target": target, "message": message[:3000],
                                 "input": repr(given)[:6000]}) + "\n")
        return "FINDING"

    def lines(self) -> list[str]:
        out = []
        for target, counter in sorted(self.counts.items()):
            total = sum(counter.values())
            kinds = ", ".join(f"{k} {v}" for k, v in counter.most_common())
            extra = f"; slowest {self.slowest[target]:.1f} s"
            if self.peak_mib[target]:
                extra += f"; peak RSS over the idle worker {self.peak_mib[target]:.0f} MiB"
            out.append(f"{target}: {total} inputs ({kinds}){extra}")
            out.extend(f"    {n:4d} x {d}" for d, n in self.details[target].most_common(12))
        total = sum(sum(c.values()) for c in self.counts.values())
        out.append(f"total: {total} inputs in {self.seconds:.0f} s of fuzz tests (worker "
                   "start included)")
        return out


_TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return _TALLY


def pytest_runtest_logreport(report) -> None:
    if "fuzz" in report.keywords and report.when in ("setup", "call"):
        _TALLY.seconds += report.duration


def pytest_sessionfinish(session, exitstatus) -> None:
    if _TALLY.findings and session.exitstatus == 0:
        session.exitstatus = 1  # recorded findings fail the run, at its end


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _TALLY.counts:
        terminalreporter.section("fuzzing: inputs tried")
        for line in _TALLY.lines():
            terminalreporter.write_line(line)
        if _TALLY.findings:
            terminalreporter.write_line(f"{_TALLY.findings} inputs broke a property; see "
                                        f"{os.environ.get('FUZZ_COLLECT')}")
        report = os.environ.get("FUZZ_REPORT")
        if report:
            Path(report).write_text("\n".join(_TALLY.lines()) + "\n")


class Worker:
    """The command lines in a child process (tests/fuzz/cli_worker.py), restarted after a
    hang or a memory peak so that every input is measured on its own."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.idle_kib = 0
        self.budget_mib, self.slack_mib = BUDGET_MIB, SLACK_MIB
        self.time_limit_option = False  # does `aipoincare discover` take --time-limit?

    def start(self) -> None:
        env = {**os.environ, "TRAINCORE_MEMORY_BUDGET": f"{BUDGET_MIB}M",
               "PYTHONPATH": str(ROOT), "AIPOINCARE_DEBUG": "0"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name(
            "cli_worker.py"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=env, cwd=ROOT)
        hello = self._read(300)
        assert hello is not None and hello["ready"], "the fuzz worker did not start"
        self.idle_kib = hello["rss_kib"]
        self.time_limit_option = hello["time_limit_option"]

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"rc": "worker died", "stderr": "",
                                              "stdout": "", "files": [], "json": {},
                                              "seconds": 0, "maxrss_kib": 0}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None

    def run(self, program: str, argv: list[str], files: dict[str, str] | None = None,
            timeout: float = 120) -> dict:
        """Run one command; ``{"rc": "timeout"}`` when it outlived ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"program": program, "argv": argv,
                                          "files": files or {}}) + "\n")
        self.proc.stdin.flush()
        reply = self._read(timeout)
        if reply is None:
            self.stop()
            return {"rc": "timeout", "stderr": "", "stdout": "", "files": [], "json": {},
                    "seconds": timeout, "maxrss_kib": 0, "over_idle_mib": 0.0}
        reply["over_idle_mib"] = (reply["maxrss_kib"] - self.idle_kib) / 1024
        if reply["rc"] == "worker died" or reply["over_idle_mib"] > BUDGET_MIB / 2:
            self.stop()  # the peak is now high: measure the next input in a fresh process
        return reply


@pytest.fixture(scope="session")
def worker():
    w = Worker()
    w.start()
    yield w
    w.stop()
