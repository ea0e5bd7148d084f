"""Logging manners: the library's events are stdlib records that the user's configuration and
``caplog`` control; only programs configure output (hil.logging.configure, hil.cli)."""

import io
import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import structlog

import hil
import hil.logging as hil_logging
from calibration import calibrate

QUIET_NEURONS = np.arange(4)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _spiking_run(device):
    placement = hil.place(hil.Network.feedforward(1, [], 1))
    base = hil.ChipConfig(i_bias_synin_exc_gm=1000, syn_i_bias_dac=1000)
    device.configure(placement.config({"input->output": np.full((1, 1), 63.0)}, scale=1.0, base=base))
    return device.run(placement.encode(np.array([[1e-6]]), duration_s=20e-6))


def _state():
    root = logging.getLogger()
    loggers = {name: logging.getLogger(name) for name in ("", "mine", *hil_logging.PROJECT_LOGGERS)}
    return {
        "handlers": list(root.handlers),
        "formatters": [h.formatter for h in root.handlers],
        "levels": {name: (lg.level, lg.propagate, list(lg.handlers)) for name, lg in loggers.items()},
        "structlog": structlog.get_config(),
        "structlog_configured": structlog.is_configured(),
    }


def test_library_leaves_the_users_logging_configuration_untouched(hil_device_url):
    root = logging.getLogger()
    project = [logging.getLogger(name) for name in hil_logging.PROJECT_LOGGERS]
    saved = root.level, list(root.handlers), [lg.level for lg in project]
    mine = Collect()
    mine.setFormatter(logging.Formatter("MINE %(levelname)s %(name)s %(message)s"))
    try:
        root.handlers[:] = [mine]
        root.setLevel(logging.INFO)
        for lg in project:  # as in a fresh program (earlier tests ran tools' configure)
            lg.setLevel(logging.NOTSET)
        logging.getLogger("mine").setLevel(logging.DEBUG)
        before = _state()
        with hil.open(hil_device_url) as device:
            _spiking_run(device)
            calibrate(device, neurons=QUIET_NEURONS, progress=False, cache=False)
        assert _state() == before
        logging.getLogger("mine").debug("my own event")
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for lg, level in zip(project, saved[2], strict=True):
            lg.setLevel(level)
        logging.getLogger("mine").setLevel(logging.NOTSET)
    assert mine.lines[-1] == "MINE DEBUG mine my own event"
    assert any(line.startswith("MINE INFO drivers.mock configure chip_id=mock-") for line in mine.lines), mine.lines[:5]
    assert any(" calibration." in line for line in mine.lines), "calibration events reach the user's handler"


def test_caplog_sees_the_projects_events_with_their_fields(caplog, hil_device):
    caplog.set_level(logging.INFO, logger="drivers")
    _spiking_run(hil_device)
    runs = [r for r in caplog.records if r.name.startswith("drivers.") and getattr(r, "event", None) == "run"]
    assert len(runs) == 1
    assert runs[0].levelno == logging.INFO and runs[0].fields["trials"] == 1
    assert runs[0].getMessage().startswith("run ") and "trials=1" in runs[0].getMessage()


def test_records_name_the_code_that_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="hil.test")
    hil_logging.get_logger("hil.test").debug("here", n=1)
    (record,) = caplog.records
    assert (record.funcName, record.pathname) == ("test_records_name_the_code_that_logged", __file__)


def test_below_the_level_nothing_is_formatted(caplog):
    class Loud:
        def __str__(self):
            raise AssertionError("formatted although filtered out")

    caplog.set_level(logging.WARNING, logger="hil.test")
    hil_logging.get_logger("hil.test").info("quiet", value=Loud())
    assert caplog.records == []


def test_a_fresh_program_keeps_its_structlog_and_sees_warnings_by_default():
    """A user's program in a fresh interpreter: its own structlog configuration survives
    importing and using the library; without any configuration WARNING and above reach stderr."""
    program = textwrap.dedent(
        """
        import numpy as np
        import structlog

        seen = []
        structlog.configure(processors=[lambda _l, _m, event: seen.append(event["event"]) or "x"],
                            logger_factory=structlog.ReturnLoggerFactory())
        import hil
        import hil.logging
        with hil.open("mock://?seed=1&noise=off") as chip:
            chip.run(hil.Stimulus.from_trials([np.zeros(0, dtype=hil.EVENT_DTYPE)], [125]))
        structlog.get_logger().info("mine")
        hil.logging.get_logger("drivers.test").info("hidden", a=1)
        hil.logging.get_logger("drivers.test").warning("shown", a=1)
        print(seen)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['mine']"
    assert done.stderr.strip().splitlines() == ["shown a=1"]


def test_program_output_human_and_json_lines():
    stream = io.StringIO()
    log = hil_logging.get_logger("calibration.test")
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in hil_logging.PROJECT_LOGGERS}
    other = logging.NullHandler()
    root.addHandler(other)
    try:
        hil_logging.configure(level="WARNING", stream=stream)
        assert root.level == logging.WARNING and logging.getLogger("drivers").level == logging.NOTSET
        log.info("hidden")
        log.warning("cache_unreadable", path="/x y", n=np.int64(3))
        logging.getLogger("numba.test").debug("never")
        hil_logging.configure(json=True, level="DEBUG", stream=stream)
        assert [type(h) for h in root.handlers].count(hil_logging.ToolHandler) == 1 and other in root.handlers
        assert root.level == logging.INFO and logging.getLogger("training").level == logging.DEBUG
        log.debug("step", wall_s=np.float32(0.5), codes=np.arange(2))
        logging.getLogger("numba.test").debug("never")
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    human, machine = stream.getvalue().splitlines()
    assert human.endswith(" warning  calibration.test: cache_unreadable path='/x y' n=3")
    record = json.loads(machine)
    assert {k: record[k] for k in ("level", "logger", "event", "wall_s", "codes")} == {
        "level": "debug",
        "logger": "calibration.test",
        "event": "step",
        "wall_s": 0.5,
        "codes": [0, 1],
    }


def test_a_closed_stream_drops_the_line_instead_of_raising():
    stream = io.StringIO()
    handler = hil_logging.ToolHandler(stream)
    handler.setFormatter(hil_logging.HumanFormatter())
    stream.close()
    handler.emit(logging.LogRecord("drivers.test", logging.ERROR, __file__, 1, "lost", None, None))


def test_progress_bar_survives_log_lines(monkeypatch):
    from hil.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    stream = Terminal()
    handler = hil_logging.ToolHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.LogRecord("calibration.test", logging.WARNING, __file__, 1, "a log line", None, None)
    with Progress(4, "calibrate", stream=stream) as bar:
        bar.update(1)
        handler.emit(record)
        bar.update(1)
    screen = stream.getvalue()
    before, after = screen.split("a log line\n")
    assert before.rstrip(" ").endswith("\r"), "the bar is cleared before the line"
    assert "calibrate:" in before and "calibrate:" in after, "and drawn again after it"
