"""Data-parallel training over several (mock) chips with torch.distributed.

Fast: device URLs per rank, the Group's collectives in two spawned gloo processes (sharding,
gradient averaging, row gathering, sync check, collective timeout). Slow (end to end,
tools/train --nproc 2 against two tools/mock-device servers over TCP): two ranks on two
copies of one chip reproduce the single-process run; two different chips reach the
single-process accuracy with bit-identical weights on the ranks; a killed server stops the
group within the timeout, naming rank and device, with the checkpoint intact.
"""

import importlib.machinery
import importlib.util
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from hil.errors import ConfigError
from training.distributed import CollectiveError, Group, device_for_rank, digest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = dict(train_size=300, test_size=100, n_hidden=40, epochs=3, batch_size=30)
LEARNING = dict(SMALL, train_size=600, test_size=300, batch_size=10, epochs=4, lr=2e-3)  # clearly above chance


def load_tool(name):
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(ROOT / "tools" / name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


from drivers import rig  # noqa: E402 - the rig helpers moved from tools/rig into drivers.rig


# --- fast ---------------------------------------------------------------------------------
def test_device_for_rank_lists_and_templates():
    assert device_for_rank("socket://a:1,socket://b:2", 1, 2) == "socket://b:2"
    assert device_for_rank("socket://127.0.0.1:{5555+rank}", 3, 4) == "socket://127.0.0.1:5558"
    assert device_for_rank("mock://?seed={rank+20}", 1, 2) == "mock://?seed=21"
    assert device_for_rank("mock://?seed=5", 0, 1) == "mock://?seed=5"
    with pytest.raises(ConfigError, match="one per rank"):
        device_for_rank("socket://a:1,socket://b:2", 0, 3)


def test_single_process_group_is_the_identity():
    g = Group.single()
    assert (g.world, g.rank, g.is_main) == (1, 0, True)
    index = torch.arange(10)
    assert torch.equal(g.shard(index), index) and torch.equal(g.gather_rows(index, 10), index)
    t = torch.ones(3)
    assert torch.equal(g.sum_(t), torch.ones(3)) and g.in_sync([t]) and g.gather_objects("x") == ["x"]


def test_batch_scope_sets_the_samples_per_step(tmp_path):
    from training.config import TrainerConfig
    from training.trainer import Trainer

    rank1_of_4 = Group.single()
    rank1_of_4.world, rank1_of_4.rank = 4, 1  # no collectives are needed to construct a Trainer
    assert Trainer(TrainerConfig(**SMALL), tmp_path, group=rank1_of_4).global_batch == 30
    assert Trainer(TrainerConfig(**SMALL, batch_scope="per_rank"), tmp_path, group=rank1_of_4).global_batch == 120
    assert Trainer(TrainerConfig(**SMALL, batch_scope="per_rank"), tmp_path).global_batch == 30
    with pytest.raises(ConfigError, match="smallest training batch 3"):
        Trainer(TrainerConfig(**{**SMALL, "batch_size": 3}), tmp_path, group=rank1_of_4)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    g = Group(timeout_s=3.0)
    out = {}
    index = torch.arange(7)
    local = g.shard(index)
    out["local"] = local.tolist()
    # local mean-gradients over 4 and 3 samples -> the mean over 7
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((2,), float(local.sum()) / len(local))
    g.average_gradients([p], len(local), len(index))
    out["grad"] = p.grad.tolist()
    rows = torch.stack([local.double(), -local.double()], dim=1)
    out["gathered"] = g.gather_rows(rows, len(index)).tolist()
    out["in_sync_equal"] = g.in_sync([torch.ones(3)])
    out["in_sync_differ"] = g.in_sync([torch.full((3,), float(rank))])
    if rank == 1:  # rank 0 waits in a collective rank 1 never joins: a bounded CollectiveError
        time.sleep(6.0)
    else:
        start = time.monotonic()
        try:
            g.sum_(torch.ones(1))
            out["timeout"] = None
        except CollectiveError as exc:
            out["timeout"] = (str(exc), time.monotonic() - start)
    results.put((rank, out))
    results.close()
    results.join_thread()  # flush before leaving without clean-up
    os._exit(0)  # the group is broken on purpose: skip destroy_process_group


def test_group_collectives_in_two_processes():
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    results, port = ctx.Queue(), _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert got[0]["local"] == [0, 2, 4, 6] and got[1]["local"] == [1, 3, 5]
    for r in (0, 1):
        assert got[r]["grad"] == pytest.approx([21 / 7] * 2)
        assert got[r]["gathered"] == [[float(i), -float(i)] for i in range(7)]
        assert got[r]["in_sync_equal"] is True and got[r]["in_sync_differ"] is False
    message, waited = got[0]["timeout"]
    assert "rank 0" in message and "another rank failed" in message and waited < 5.5


def test_digest_is_bit_exact():
    a = torch.tensor([1.0, 2.0])
    assert digest([a]) == digest([a.clone()]) != digest([a + 1e-7])


# --- slow: end to end over TCP ----------------------------------------------------------------
def _servers(seeds, **kw):
    return [rig.start_server(s, noise="off", pace=kw.get("pace", "off"), overhead=kw.get("overhead")) for s in seeds]


def _train(urls, out, config, *extra, timeout=600, **popen):
    cfg = pathlib.Path(out).with_suffix(".json")
    cfg.write_text(json.dumps(config))
    cmd = [
        sys.executable,
        str(ROOT / "tools/train"),
        "--nproc",
        str(len(urls)),
        "--device",
        ",".join(urls),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    env = dict(os.environ, CI="true")
    if popen.pop("background", False):
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _weights(out):
    return torch.load(pathlib.Path(out) / "checkpoint.pt", weights_only=True)["weights"]


@pytest.mark.slow
def test_two_chips_train_like_one_process_with_identical_weights(tmp_path):
    from training.config import TrainerConfig
    from training.trainer import Trainer

    servers = _servers([21, 22])
    try:
        p = _train([u for _, u in servers], tmp_path / "two", LEARNING, "--collective-timeout", "120")
    finally:
        rig.stop([proc for proc, _ in servers])
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    assert report["world_size"] == 2 and len(set(report["weight_digests"])) == 1
    assert len({r["chip_id"] for r in report["ranks"]}) == 2
    assert all(m["ranks_in_sync"] for m in report["metrics"])
    for key in ("device_s", "backward_s", "allreduce_s"):
        assert all(m[key] >= 0 for m in report["metrics"])
    single = Trainer(
        TrainerConfig.from_dict({**LEARNING, "device": "mock://?seed=21&noise=off"}), tmp_path / "one", progress=False
    ).run()
    accuracies = (report["test_accuracy"], single["test_accuracy"])
    assert min(accuracies) >= 0.5 and abs(accuracies[0] - accuracies[1]) <= 0.15, accuracies
    # resume of the whole group from rank 0's checkpoint: one more epoch
    servers = _servers([21, 22])
    try:
        p = _train([u for _, u in servers], tmp_path / "two", {**LEARNING, "epochs": 5}, "--resume", "--epochs", "5")
    finally:
        rig.stop([proc for proc, _ in servers])
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_two_ranks_on_copies_of_one_chip_reproduce_the_single_process_run(tmp_path):
    from training.config import TrainerConfig
    from training.trainer import Trainer

    config = {**SMALL, "epochs": 2}
    servers = _servers([21, 21])
    try:
        p = _train([u for _, u in servers], tmp_path / "two", config)
    finally:
        rig.stop([proc for proc, _ in servers])
    assert p.returncode == 0, p.stderr[-3000:]
    Trainer(
        TrainerConfig.from_dict({**config, "device": "mock://?seed=21&noise=off"}), tmp_path / "one", progress=False
    ).run()
    a, b = _weights(tmp_path / "two"), _weights(tmp_path / "one")
    for key in a:  # same samples, same chip: only the summation order of the gradient differs
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_killed_server_stops_the_group_within_the_timeout_and_keeps_the_checkpoint(tmp_path):
    timeout = 10.0
    servers = _servers([21, 22], pace="realtime", overhead=0.02)
    urls = [f"{u}?timeout=0.5&retries=1&backoff=0.05" for _, u in servers]
    try:
        proc = _train(
            urls, tmp_path / "run", {**SMALL, "epochs": 30}, "--collective-timeout", str(timeout), background=True
        )
        ckpt = tmp_path / "run" / "checkpoint.pt"
        deadline = time.time() + 300
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ckpt.exists(), proc.communicate()[1][-3000:]
        time.sleep(0.3)
        servers[1][0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        try:
            _, stderr = proc.communicate(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        elapsed = time.monotonic() - killed
    finally:
        rig.stop([p for p, _ in servers])
    assert proc.returncode != 0
    assert elapsed < timeout + 15, elapsed
    assert "rank 1" in stderr and urls[1].split("?")[0] in stderr, stderr[-3000:]
    assert "--resume" in stderr
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] >= 1 and set(state["weights"]) == {"weights.hidden0", "weights.output"}
