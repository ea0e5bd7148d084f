import argparse

import pytest

from hil import cli
from hil.errors import ConfigError


def _main(exc):
    def main(argv):
        if exc is not None:
            raise exc
        return 0

    return main


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (None, cli.EXIT_OK, None),
        (ConfigError("TrainerConfig.lr = -1; allowed: > 0"), cli.EXIT_ERROR, "tool: error: TrainerConfig.lr = -1"),
        (FileNotFoundError(2, "No such file", "x.json"), cli.EXIT_ERROR, "tool: error: FileNotFoundError"),
        (cli.Stopped("device failed; checkpoint kept"), cli.EXIT_STOPPED, "tool: stopped: device failed"),
        (KeyboardInterrupt(), cli.EXIT_INTERRUPTED, "tool: interrupted"),
    ],
)
def test_every_failure_is_one_line_and_a_documented_code(capsys, exc, code, line):
    assert cli.run("tool", _main(exc), []) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if line is None:
        assert err == ""
    else:
        assert err.splitlines()[0].startswith(line)


def test_unexpected_error_points_to_debug_and_debug_shows_it(capsys):
    assert cli.run("tool", _main(RuntimeError("boom")), []) == cli.EXIT_ERROR
    assert "--debug" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="boom"):
        cli.run("tool", _main(RuntimeError("boom")), ["--debug"])


def test_common_arguments_and_levels(capsys):
    parser = argparse.ArgumentParser(prog="tool")
    cli.add_common_arguments(parser)
    assert cli.log_level(parser.parse_args([])) == "WARNING"
    assert cli.log_level(parser.parse_args(["-v"])) == "INFO"
    assert cli.log_level(parser.parse_args(["-vv"])) == "DEBUG"
    assert cli.log_level(parser.parse_args(["-q"])) == "ERROR"
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--version"])
    assert stop.value.code == 0
    assert "tool (bss2-hil)" in capsys.readouterr().out
