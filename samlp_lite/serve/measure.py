"""How one serving call is measured: timed repeats, peak memory, an op profile.

:func:`time_calls` times a callable under a :class:`TimingPolicy` (warm-up, then repeats
until a count or a time budget is reached); the clock is ``time.perf_counter`` and on CUDA
``torch.cuda.synchronize`` brackets each call.

Peak memory (:func:`peak_memory_bytes`): on CUDA ``torch.cuda.max_memory_allocated`` over one
call, minus what was allocated before. On CPU, tracemalloc does not see torch's allocator, so
the call runs under ``torch.profiler`` with ``profile_memory=True``; the peak of the running
sum of its allocation and free events is the extra memory the call needed (for a server:
gathered inputs, activations, temporaries, the output), excluding what existed before it
(the stored graph, the parameters).

:func:`op_profile` breaks a call down into its most expensive aten ops (CPU).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

MEMORY_METHOD = {
    "cpu": "torch.profiler(profile_memory=True): peak of the running sum of allocations minus "
           "frees during one call (stored graph and parameters excluded)",
    "cuda": "torch.cuda.max_memory_allocated during one call minus memory_allocated before it",
}
"""How :func:`peak_memory_bytes` measures, per device type (recorded with the numbers)."""


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs a line per start and stop."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cpu_peak_bytes(call: Callable[[], Any]) -> int | None:
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    try:
        events = prof.profiler.kineto_results.events()
        deltas = [(e.start_ns(), e.nbytes()) for e in events
                  if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")]
    except AttributeError:  # the profiler's result API moved: say so rather than guess
        return None
    deltas.sort(key=lambda item: item[0])
    running = peak = 0
    for _, nbytes in deltas:
        running += nbytes
        peak = max(peak, running)
    return peak


def peak_memory_bytes(call: Callable[[], Any], device: torch.device) -> int | None:
    """Extra memory one ``call()`` needs at its peak (see the module docstring); None if unknown."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    return _cpu_peak_bytes(call)


@dataclass
class TimingPolicy:
    """How often a cell runs.

    One untimed call measures memory (and warms up); then up to ``warmup - 1`` more untimed
    calls; then timed calls until ``repeats`` are done, or ``budget_s`` has passed and at least
    ``min_repeats`` are done. A cell whose first timed call alone exceeds ``budget_s`` stops
    after it (the row says ``repeats: 1``).
    """

    warmup: int = 3
    repeats: int = 20
    min_repeats: int = 3
    budget_s: float = 3.0


def time_calls(call: Callable[[Tensor | None], Any], batches: Sequence[Tensor | None], device: torch.device,
               policy: TimingPolicy, warm_s: float = 0.0) -> list[float]:
    """Seconds per timed call of ``call(batch)``, batches taken in order (after the warm-up ones).

    Targets are copied to ``device`` and logits back to the host inside the timed region, with
    ``torch.cuda.synchronize`` around it on CUDA (no-ops on the CPU). Warm-up calls stop once
    they (plus ``warm_s`` already spent, e.g. by the memory call) exceed a quarter of the budget.
    """
    index = 0
    warm_start = time.perf_counter() - warm_s
    for _ in range(max(policy.warmup - 1, 0)):
        if time.perf_counter() - warm_start > policy.budget_s / 4:
            break
        batch = batches[index % len(batches)]
        call(batch.to(device) if batch is not None else None)
        index += 1
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < policy.repeats:
        batch = batches[index % len(batches)]
        index += 1
        synchronize(device)
        t0 = time.perf_counter()
        out = call(batch.to(device) if batch is not None else None)
        out = out.cpu()
        synchronize(device)
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if times[0] > policy.budget_s or (elapsed > policy.budget_s and len(times) >= policy.min_repeats):
            break
    return times


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation between order statistics, as NumPy's default)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)



def op_profile(call: Callable[[Tensor | None], Any], batches: Sequence[Tensor | None], top: int = 8
               ) -> list[dict[str, Any]]:
    """Self CPU time per call of the ``top`` most expensive aten ops over ``batches`` (microseconds)."""
    from torch.profiler import ProfilerActivity, profile

    for batch in batches[:3]:
        call(batch)
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            call(batch)
    table = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in table) / len(batches)
    rows = [{"op": e.key, "self_us_per_call": round(e.self_cpu_time_total / len(batches), 2),
             "calls_per_batch": round(e.count / len(batches), 2)} for e in table[:top]]
    return [{"op": "total", "self_us_per_call": round(total, 2), "calls_per_batch": None}] + rows

