"""EventProp LIF layers on a 5-120-3 Yin-Yang network: forward (inference, no autograd
bookkeeping) and forward+backward (a training step) throughput; scaling from one to two
threads; throughput while another process holds a core; peak memory of a step."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import torch
from bench import HERE, case, load_average

from training.lif import LIFParameters, spike_times

REFERENCE = {  # jaxsnn 0.3.0, 2 cores, samples/s
    "float32": {"forward": 6700, "forward_backward": 4200},
    "float64": {"forward": 3600, "forward_backward": 3400},
}
T_MAX = 60e-6
RATIO_2 = LIFParameters(tau_mem=12e-6, tau_syn=6e-6)  # closed-form crossings
RATIO_137 = LIFParameters(tau_mem=12e-6, tau_syn=12e-6 / 1.37)  # Newton


def _network(dtype, batch, seed=0):
    """Yin-Yang-like inputs (4 features + bias) and weights that make every neuron spike."""
    g = torch.Generator().manual_seed(seed)
    features = torch.rand(batch, 4, generator=g, dtype=dtype)
    inputs = torch.cat([1e-6 + 12e-6 * features, torch.full((batch, 1), 7e-6, dtype=dtype)], dim=1)
    w1 = (torch.randn(5, 120, generator=g, dtype=dtype) * 0.3 + 3.0).requires_grad_()
    w2 = (torch.randn(120, 3, generator=g, dtype=dtype) * 0.05 + 0.15).requires_grad_()
    return inputs, w1, w2


def _forward(params, inputs, w1, w2):
    hidden = spike_times(inputs, w1, params, t_max=T_MAX).times
    return hidden, spike_times(hidden, w2, params, t_max=T_MAX).times


def training_step(params, dtype, batch):
    """A function running one forward+backward pass of the network."""
    inputs, w1, w2 = _network(dtype, batch)

    def step():
        _, out = _forward(params, inputs, w1, w2)
        torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()

    return step


def _measure(bench, params, dtype, batch, label):
    inputs, w1, w2 = _network(dtype, batch)

    def inference():
        with torch.no_grad():
            return _forward(params, inputs, w1, w2)

    hidden, out = inference()
    t_fwd = bench.time(inference, label=f"{label}.forward")
    t_fb = bench.time(training_step(params, dtype, batch), label=f"{label}.forward_backward")
    return {
        "forward_samples_per_s": batch / t_fwd,
        "forward_backward_samples_per_s": batch / t_fb,
        "backward_over_forward_time": (t_fb - t_fwd) / t_fwd,
        "hidden_spiking_fraction": float(torch.isfinite(hidden).double().mean()),
        "output_spiking_fraction": float(torch.isfinite(out).double().mean()),
    }


@case("eventprop.yinyang")
def yinyang(bench):
    torch.set_num_threads(2)
    batch = 200 if bench.quick else 1000
    figures = {
        "batch": batch,
        "threads": 2,
        "network": "5-120-3, max_spikes=1",
        "reference_jaxsnn_0.3.0": REFERENCE,
        "load_average_before": load_average(),
    }
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        closed = _measure(bench, RATIO_2, dtype, batch, f"{name}.ratio2")
        closed["speedup_forward_vs_reference"] = closed["forward_samples_per_s"] / REFERENCE[name]["forward"]
        closed["speedup_forward_backward_vs_reference"] = (
            closed["forward_backward_samples_per_s"] / REFERENCE[name]["forward_backward"]
        )
        figures[f"{name}.tau_ratio_2"] = closed
        figures[f"{name}.tau_ratio_1.37"] = _measure(bench, RATIO_137, dtype, batch, f"{name}.ratio1.37")
    figures["load_average_after"] = load_average()
    return figures


def _cpu_per_step(step, repeats):
    """(process CPU, calling thread's CPU) per call of step, in seconds: independent of how
    busy the machine is, unlike wall time."""
    step()
    process, thread = time.process_time(), time.thread_time()
    for _ in range(repeats):
        step()
    return (time.process_time() - process) / repeats, (time.thread_time() - thread) / repeats


@case("eventprop.threads")
def threads(bench):
    """float32 forward+backward, tau ratio 2, at one and at two threads (target: two >= 1.6x one).

    On a busy machine wall times say little; the CPU figures do: ``cpu_speedup_bound`` is the
    one-thread CPU time over the calling thread's CPU time at two threads, the speedup an
    otherwise idle machine gives when the calling thread (which runs all Python) is the
    critical path; ``cpu_overhead`` is the extra CPU that two threads spend in total.
    """
    batch = 200 if bench.quick else 1000
    step = training_step(RATIO_2, torch.float32, batch)
    figures = {"batch": batch, "load_average_before": load_average()}
    cpu = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            figures[f"threads_{n}_samples_per_s"] = batch / bench.time(step, label=f"threads_{n}")
            cpu[n] = _cpu_per_step(step, bench.repeats)
    finally:
        torch.set_num_threads(2)
    figures["two_over_one"] = figures["threads_2_samples_per_s"] / figures["threads_1_samples_per_s"]
    figures["cpu_ms_per_step"] = {n: [1e3 * t for t in cpu[n]] for n in cpu}  # [process, calling thread]
    figures["cpu_speedup_bound"] = cpu[1][0] / cpu[2][1]
    figures["cpu_overhead"] = cpu[2][0] / cpu[1][0] - 1
    figures["load_average_after"] = load_average()
    return figures


@case("eventprop.loaded")
def loaded(bench):
    """float32 forward+backward at two threads, idle and while a busy-looping process this case
    starts (and stops) holds a core (target: loaded >= 0.6x idle)."""
    torch.set_num_threads(2)
    batch = 200 if bench.quick else 1000
    step = training_step(RATIO_2, torch.float32, batch)
    figures = {"batch": batch, "threads": 2, "load_average_before": load_average()}
    figures["idle_samples_per_s"] = batch / bench.time(step, label="idle")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let the scheduler place it
        figures["loaded_samples_per_s"] = batch / bench.time(step, label="loaded")
    finally:
        busy.kill()
        busy.wait()
    figures["loaded_over_idle"] = figures["loaded_samples_per_s"] / figures["idle_samples_per_s"]
    figures["load_average_after"] = load_average()
    return figures


_CHILD = """
import sys
sys.path[:0] = [{tools!r}]
import torch
from bench_cases.eventprop import RATIO_2, training_step

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

training_step(RATIO_2, torch.float32, 8)()  # compile and load everything on a tiny batch
step = training_step(RATIO_2, torch.float32, {batch})
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark to the current RSS
before = rss("VmRSS:")
step()
print((rss("VmHWM:") - before) / 2**20)
"""


@case("eventprop.memory")
def memory(bench):
    """Peak memory of a float32 forward+backward step at batch 1000 (target: < 50 MiB): the rise
    of the resident-set high-water mark over the resident set before the step, each run in a
    fresh process (so that no freed memory of an earlier run is reused)."""
    batch = 200 if bench.quick else 1000
    script = _CHILD.format(tools=str(HERE), batch=batch)
    peaks = [
        float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
        for _ in range(1 if bench.quick else 3)
    ]
    return {"batch": batch, "threads": torch.get_num_threads(), "peak_mib": statistics.median(peaks), "runs_mib": peaks}
