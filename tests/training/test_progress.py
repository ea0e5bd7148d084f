import io

from training.progress import Progress


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
