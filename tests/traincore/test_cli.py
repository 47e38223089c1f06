import pytest

from traincore import DeviceError, NonFiniteError
from traincore.cli import run_command


def _raise(exc):
    def action():
        raise exc
    return action


@pytest.mark.parametrize("exc,status,line", [
    (ValueError("The 'degree' must be 1 to 8;\n got 9."), 2,
     "error: The 'degree' must be 1 to 8; got 9."),
    (DeviceError("no CUDA"), 2, "error: no CUDA"),
    (FileNotFoundError("missing.toml"), 2, "error: missing.toml"),
    (NonFiniteError("loss is nan"), 1, "error: loss is nan"),
    (KeyboardInterrupt(), 130, "error: stopped, checkpoint kept"),
    (ZeroDivisionError("oops"), 1, "error: internal error (ZeroDivisionError: oops); rerun with "
                                   "X_DEBUG=1 for the traceback and report it."),
])
def test_exit_statuses_and_one_line(capsys, monkeypatch, exc, status, line):
    monkeypatch.delenv("X_DEBUG", raising=False)
    assert run_command(_raise(exc), interrupted="stopped, checkpoint kept",
                       debug_env="X_DEBUG") == status
    err = capsys.readouterr().err
    assert err == line + "\n"


def test_success_and_debug(monkeypatch):
    assert run_command(lambda: 0, interrupted="-") == 0
    monkeypatch.setenv("X_DEBUG", "1")
    with pytest.raises(ValueError):
        run_command(_raise(ValueError("bad")), interrupted="-", debug_env="X_DEBUG")


def test_broken_pipe_is_quiet(capfd):
    import subprocess
    import sys

    code = ("import sys\nfrom traincore.cli import run_command\n"
            "def act():\n    for i in range(100000):\n        print('line', i)\n    return 0\n"
            "sys.exit(run_command(act, interrupted='-'))\n")
    proc = subprocess.run(f"{sys.executable} -c \"{code}\" | head -1", shell=True,
                          capture_output=True, text=True)
    assert proc.stdout == "line 0\n"
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr


def _tool():
    from traincore.cli import ArgumentParser, int_arg, number_arg

    parser = ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    run = sub.add_parser("run")
    run.add_argument("--degree", type=int_arg(1, 8))
    run.add_argument("--tol", type=number_arg(0, 1, example="1e-9"))
    return parser


def test_run_cli_dispatches_and_reports_usage_errors(capsys):
    from traincore.cli import run_cli

    seen = []
    commands = {"run": lambda args: seen.append((args.degree, args.tol)) or 0}
    assert run_cli(_tool(), commands, ["run", "--degree", "3", "--tol", "1e-9"],
                   interrupted="-") == 0
    assert seen == [(3, 1e-9)]
    for argv, message in ((["run", "--degree", "9"],
                           "argument --degree: must be an integer from 1 to 8; got 9"),
                          (["run", "--degree", "x"], "must be an integer from 1 to 8; got 'x'"),
                          (["run", "--tol", "2"], r"must be a number in (0, 1) (e.g. 1e-9); got 2"),
                          (["run", "--tol", "nan"], "got nan"),
                          (["walk"], "invalid choice: 'walk'"),
                          ([], "the following arguments are required: command")):
        assert run_cli(_tool(), commands, argv, interrupted="-") == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
        assert err.rstrip().endswith("see `tool --help`.") or "tool run" in err
    assert run_cli(_tool(), commands, ["--help"], interrupted="-") == 0
    assert "usage: tool" in capsys.readouterr().out
