"""The activation commands of the CLI: list, info, plot, --help everywhere, clean user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from actlab.cli import build_parser, main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "smu" in out and "arXiv:2111.04682" in out
    assert main(["list", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)]
    assert "mish" in names


def test_info(capsys):
    assert main(["info", "mish"]) == 0
    out = capsys.readouterr().out
    assert "-0.308843 at x = -1.19243" in out
    assert main(["info", "smu(alpha=0.25)", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["learnable"] == ["mu"]


def test_plot_writes_png(tmp_path):
    out = tmp_path / "figs" / "acts.png"
    assert main(["plot", "relu", "swish", "mish", "smu", "--range", "-4", "4", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    der = tmp_path / "d.png"
    assert main(["plot", "smu1", "gelu", "--derivative", "-o", str(der)]) == 0
    assert der.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "mishh"], "unknown activation"),
        (["plot", "mish", "--range", "3", "-3", "-o", "x.png"], "LOW < HIGH"),
        (["plot", "swish(beat=1)", "-o", "x.png"], "no keyword 'beat'"),
    ],
)
def test_user_errors_are_one_clean_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error:") and message in err and "Traceback" not in err


def test_help_on_every_command(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"list", "info", "plot", "train", "compare", "results", "report", "bench"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: actlab {name}" in capsys.readouterr().out


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "actlab.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "usage: actlab" in result.stdout, result.stderr


def test_console_script_starts_with_the_reuse_allocator(monkeypatch):
    from actlab import allocator, cli

    for var in (*allocator.ALLOCATOR_VARS, allocator.OPT_OUT):
        monkeypatch.delenv(var, raising=False)
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda exe, argv, env: calls.append((argv, env)) or sys.exit(0))
    monkeypatch.setattr(sys, "argv", ["actlab", "list"])
    with pytest.raises(SystemExit):
        cli.console_main()
    ((argv, env),) = calls
    assert argv[1:] == ["-m", "actlab.cli", "list"]
    assert env["MALLOC_MMAP_THRESHOLD_"] == env["MALLOC_TRIM_THRESHOLD_"] == "17179869184"


def test_allocator_startup_env_respects_the_user():
    from actlab.allocator import startup_env

    assert startup_env({}) == {
        "MALLOC_MMAP_THRESHOLD_": "17179869184",
        "MALLOC_TRIM_THRESHOLD_": "17179869184",
    }
    assert startup_env({"ACTLAB_ALLOCATOR": "asis"}) == {}
    assert startup_env({"MALLOC_ARENA_MAX": "2"}) == {}  # the user chose: leave it alone
    assert startup_env({"ACTLAB_ALLOCATOR": "thp"}) == {"THP_MEM_ALLOC_ENABLE": "1"}


def test_broken_pipe_is_not_an_error():
    result = subprocess.run(
        f"{sys.executable} -m actlab.cli list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() and "Traceback" not in result.stderr
