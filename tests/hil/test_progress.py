import io

from hil.progress import Progress


def test_plain_lines_without_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    stream = io.StringIO()
    with Progress(8, "epoch 1/2", stream=stream, every=0.5) as p:
        for _ in range(8):
            p.update(1, loss=0.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2: 4/8") and "loss=0.5" in lines[0]
    assert lines[1].startswith("epoch 1/2: 8/8")


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    with Progress(4, "x", enabled=False, stream=stream) as p:
        p.update(4)
    assert stream.getvalue() == ""


def test_every_step_gets_a_line_when_every_is_one_step(monkeypatch):
    monkeypatch.setenv("CI", "true")
    stream = io.StringIO()
    with Progress(3, "calibrate", stream=stream, every=1 / 3, unit="step") as p:
        for name in ("leak", "drive", "membrane"):
            p.update(1, step=name)
    lines = stream.getvalue().splitlines()
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "step=membrane" in lines[-1] and "\r" not in stream.getvalue()
