"""The README's "Train your own network" section runs as written and learns."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_your_own_network_runs_as_written(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Train your own network") : text.index("## Layout")]
    script = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace(".venv/bin/python", sys.executable)
    env = dict(os.environ, CI="true", PYTHONPATH=str(ROOT))
    p = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", p.stdout).group(1))
    assert accuracy >= 0.8, p.stdout  # two classes: chance is 0.5
