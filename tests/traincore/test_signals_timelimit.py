"""SIGTERM like Ctrl-C (checkpoint kept, exit 143) and time limits the code enforces."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from traincore import (
    DeferredSignals,
    Interrupted,
    TimeLimitError,
    check_time,
    fit,
    load_checkpoint,
    terminate_raises,
    time_left,
    time_limit,
)
from traincore.cli import EXIT_TERMINATED, run_command


def test_interrupted_knows_its_signal():
    exc = Interrupted(signal.SIGTERM)
    assert isinstance(exc, KeyboardInterrupt)
    assert (exc.signum, exc.exit_status, exc.name) == (15, 143, "SIGTERM")
    assert Interrupted().exit_status == 130


def test_deferred_signals_second_signal_raises_and_handlers_restored():
    before = signal.getsignal(signal.SIGTERM)
    with DeferredSignals() as flag:
        assert not flag
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.signum == signal.SIGINT
        with pytest.raises(Interrupted) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs at the next bytecode boundary
        assert info.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_fit_saves_checkpoint_on_sigterm(tmp_path):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=0.1)

    def step(i, values):
        if i == 11:
            os.kill(os.getpid(), signal.SIGTERM)
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    with pytest.raises(Interrupted) as info:
        fit(step, 100, state={"w": opt}, checkpoint_dir=tmp_path, log_every=5)
    assert info.value.exit_status == 143
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 12  # the step it was in


def test_run_command_sigterm_is_143_with_one_line(capsys):
    def action():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    assert run_command(action, interrupted="partial results kept") == EXIT_TERMINATED
    assert capsys.readouterr().err == "error: terminated by SIGTERM: partial results kept\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_terminate_raises_in_a_real_process():
    code = textwrap.dedent("""
        import sys, time
        from traincore.cli import run_command
        def act():
            print("ready", flush=True)
            time.sleep(30)
            return 0
        sys.exit(run_command(act, interrupted="nothing was written"))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err == "error: terminated by SIGTERM: nothing was written\n"


def test_terminate_raises_outside_main_thread_is_a_no_op():
    import threading

    seen = []

    def worker():
        with terminate_raises():
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [signal.SIG_DFL]


def test_check_time_raises_with_stage_and_hint():
    with pytest.raises(TimeLimitError, match=r"^The discovery stopped at its time limit of "
                                             r"0\.05 s during the float null space; lower "
                                             r"--degree\.$"):
        with time_limit(0.05, what="the discovery", hint="lower --degree", alarm=False):
            time.sleep(0.06)
            check_time("the float null space")
    check_time("outside")  # no limit: nothing happens
    assert time_left() == float("inf")
    assert isinstance(TimeLimitError("x"), OSError)  # exit status 2 on the command lines


def test_alarm_interrupts_code_that_never_checks_and_swallows_errors():
    start = time.perf_counter()
    swallowed = []
    with pytest.raises(TimeLimitError, match="time limit of 0.2 s"):
        with time_limit(0.2):
            try:
                while True:  # a pure-Python loop without check_time()
                    sum(range(1000))
            except Exception as exc:  # a library's blanket fallback swallows the first one
                swallowed.append(exc)
            while True:  # ... and its fallback never checks either: the alarm repeats
                sum(range(1000))
    assert len(swallowed) == 1 and isinstance(swallowed[0], TimeLimitError)
    assert time.perf_counter() - start < 2.0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_nested_limits_the_earlier_deadline_wins():
    with time_limit(10, what="the outer") as outer:
        with time_limit(100, what="the inner") as inner:
            assert inner is outer and time_left() <= 10
        with time_limit(0.05, what="the inner", alarm=False) as inner:
            assert inner is not outer and time_left() <= 0.05
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 5  # the outer timer re-armed
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("bad,kind", [(0, ValueError), (-1, ValueError),
                                      (float("nan"), ValueError), (float("inf"), ValueError),
                                      ("10", TypeError), (True, TypeError)])
def test_time_limit_rejects_bad_values(bad, kind):
    with pytest.raises(kind, match=r"The 'time_limit' must be a positive number; got .*; give it "
                                   r"in seconds\."):
        with time_limit(bad):
            pass
