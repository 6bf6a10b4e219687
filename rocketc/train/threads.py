"""How many threads torch computes with: `--threads N`, else a default that leaves room.

torch starts one intra-op thread per physical core. On a machine doing anything else that
oversubscribes it: on 2 busy cores one thread ran a training step 4x faster than two (issue
19). The default is half the cores this process may run on (at least 1), unless
OMP_NUM_THREADS says otherwise (torchrun and `--nproc` set it per process). It is a fixed
number for a machine, not a guess from its current load, so the same command computes the same
numbers (a float sum's order can depend on the thread count).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS says)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def choose(requested: int | None) -> tuple[int, str]:
    """(threads, why): `requested`, else OMP_NUM_THREADS, else half the usable cores."""
    if requested is not None:
        return requested, "--threads"
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given), "OMP_NUM_THREADS"
    cores = usable_cores()
    return max(1, cores // 2), f"half of {cores} cores; --threads N to change"


def use(requested: int | None) -> tuple[int, str]:
    """Set torch's intra-op threads; returns what `choose` decided."""
    import torch

    threads, why = choose(requested)
    torch.set_num_threads(threads)
    return threads, why
