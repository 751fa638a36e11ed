"""scripts/load_test.py without a browser or a server: its command line, its checks and its percentile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "load_test.py"
FLAGS = ("--sessions", "--moves", "--port", "--timeout", "--time-cap", "--distinct")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_help_names_every_flag_and_each_has_help():
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    for flag in FLAGS:
        assert flag in result.stdout
    assert "loopback" in " ".join(result.stdout.split())


def test_every_flag_has_help_text():
    from scripts.load_test import build_parser

    actions = build_parser()._actions
    assert set(FLAGS) <= {o for action in actions for o in action.option_strings}
    for action in actions:
        assert action.help, f"{action.option_strings} has no help"


@pytest.mark.parametrize("args, needle", [
    (["--sessions", "0"], "--sessions must be between 1 and 16, not 0"),
    (["--sessions", "100"], "--sessions must be between 1 and 16, not 100"),
    (["--moves", "0"], "--moves must be between 1 and 20, not 0"),
    (["--port", "80"], "--port must be between 1024 and 65535, not 80"),
    (["--timeout", "nan"], "--timeout must be between 1 and 600 seconds"),
    (["--time-cap", "1"], "--time-cap must be between 10 and 1800 seconds"),
    (["--sessions", "many"], "invalid int value"),
])
def test_bad_values_are_refused_with_one_plain_line(args, needle):
    result = _cli(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_defaults():
    from scripts.load_test import parse_args

    args = parse_args([])
    assert (args.sessions, args.moves, args.port, args.timeout) == (4, 5, None, 60.0)


def test_percentile_is_exact_on_a_small_list():
    from scripts.load_test import percentile

    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    for q in (5, 25, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)

