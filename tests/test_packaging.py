"""Installable like a library: console scripts with --version, version ranges with the pins in
constraints.txt, ./run reinstalling when either changes, tools/* wrappers that find the
project's interpreter, and a non-editable ``pip install`` that gives working scripts."""

import importlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import pytest

import hil

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_is_installed_and_answers_version(name, capsys):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert installed.get(name) == SCRIPTS[name], "the environment's metadata matches pyproject.toml"
    module, function = SCRIPTS[name].split(":")
    main = getattr(importlib.import_module(module), function)
    try:  # a console script may return its exit code or raise SystemExit with it
        code = main(["--version"])
    except SystemExit as stop:
        code = stop.code
    assert code in (0, None)
    assert f"(bss2-hil) {hil.__version__}" in capsys.readouterr().out


def test_dependencies_are_ranges_and_the_pins_live_in_constraints():
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    for requirement in project["dependencies"]:
        assert "==" not in requirement, f"{requirement}: pyproject.toml holds ranges; pins go to constraints.txt"
    torch_floor = next(r for r in project["dependencies"] if r.startswith("torch"))
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert "torch==2.13.0" in pins and all("==" in p for p in pins), pins
    ruff_pin = next(p for p in pins if p.startswith("ruff=="))
    test_extra = project["optional-dependencies"]["test"]
    assert any(r.startswith("ruff") and "==" not in r for r in test_extra), "the lint gate's tool is a test extra"
    from importlib.metadata import version

    assert version("ruff") == ruff_pin.split("==")[1], "./run installs the pinned ruff"
    assert torch_floor == "torch>=2.13.0", "the floor is the release we test"
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"


FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
"""


def _run(tree, *args):
    return subprocess.run(["bash", str(tree / "run"), *args], capture_output=True, text=True, timeout=60)


def test_run_reinstalls_exactly_when_pyproject_or_constraints_change(tmp_path):
    for name in ("run", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = fake.parent / "calls"

    def installs():
        text = calls.read_text() if calls.exists() else ""
        calls.unlink(missing_ok=True)
        return [line for line in text.splitlines() if line.startswith("-m pip install --quiet -c constraints.txt")]

    assert _run(tmp_path, "test", "-q").returncode == 0
    assert installs() == ["-m pip install --quiet -c constraints.txt -e .[test]"]
    assert _run(tmp_path, "test", "-q").returncode == 0
    assert installs() == []
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\nnumpy<3\n")
    _run(tmp_path, "test")
    assert len(installs()) == 1
    with (tmp_path / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    _run(tmp_path, "test")
    assert len(installs()) == 1
    assert _run(tmp_path, "nonsense").returncode == 2


WRAPPER = """#!/usr/bin/env python3
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _launch import launch

sys.exit(launch("needsdeps:main"))
"""


def _launch_tree(tmp_path):
    """A repository with one tool whose module needs a dependency no interpreter here has."""
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "_launch.py", tmp_path / "tools" / "_launch.py")
    (tmp_path / "tools" / "tool").write_text(WRAPPER)
    (tmp_path / "needsdeps.py").write_text("import a_dependency_nobody_has\n\ndef main():\n    return 0\n")
    return tmp_path / "tools" / "tool"


def test_tool_without_the_dependencies_reruns_with_the_repository_venv(tmp_path):
    tool = _launch_tree(tmp_path)
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text('#!/bin/sh\necho "venv python $@"\n')
    venv_python.chmod(0o755)
    done = subprocess.run([sys.executable, str(tool), "--epochs", "1"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == f"venv python {tool} --epochs 1\n", done.stderr


def test_tool_without_the_dependencies_and_without_a_venv_gives_a_one_line_hint(tmp_path):
    tool = _launch_tree(tmp_path)
    done = subprocess.run([sys.executable, str(tool)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"tool: error: {sys.executable} has no module 'a_dependency_nobody_has'; create the project's environment "
        f"with '{tmp_path / 'run'} test', or 'pip install {tmp_path}' into yours"
    ]


@pytest.mark.slow
def test_pip_install_of_a_clean_tree_gives_working_console_scripts(tmp_path):
    """A non-editable install of the tracked files into a new venv; the dependencies come from
    this environment (a .pth file) so that nothing is downloaded."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / "src" / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # pip, setuptools: ours
    site = pathlib.Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "deps-of-the-test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, str(tmp_path / "src")], check=True, cwd=tmp_path, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*cmd):
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

    where = run(venv / "bin" / "python", "-c", "import hil, drivers.mock; print(hil.__file__, drivers.mock.__file__)")
    assert where.stdout.split() and all(p.startswith(str(site)) for p in where.stdout.split()), where
    for name in SCRIPTS:
        assert (venv / "bin" / name).is_file()
    version = run(venv / "bin" / "hil-mock-device", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"hil-mock-device (bss2-hil) {hil.__version__}"
    plugin = run(venv / "bin" / "python", "-m", "pytest", "--help")
    assert "--hil-device=URL" in plugin.stdout, "the pytest plugin comes with the install"
    server = subprocess.Popen(
        [venv / "bin" / "hil-mock-device", "--seed", "2"], stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    try:
        assert server.stdout.readline().startswith("listening socket://127.0.0.1:")
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0
