"""How many threads torch computes with: the physical cores this process may use, unless told.

torch's default is every logical CPU of the machine, whatever the process is allowed: in a
container limited to 2 CPUs of a 64-core host, or on cores shared with other jobs, its OpenMP
threads then wait on each other at every parallel region (``nertool demo`` took 3.5 minutes
that way and 16 seconds with one thread). nertool picks, in this order: ``--threads N``;
``OMP_NUM_THREADS`` when it is set (``torchrun`` sets 1 per process); the physical cores in the
process's CPU affinity, capped by the cgroup CPU quota and shared among local processes. The
Rust tokenizer's own threads are turned off while torch computes (``tokenizer_threads_off``), so
the two do not compete for the same cores.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def allowed_cpus() -> set[int]:
    """The logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int], sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """Cores among ``cpus``: hyper-threads of one core (its ``thread_siblings_list``) count once."""
    cores = set()
    for cpu in cpus:
        try:
            cores.add((sysfs / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def cgroup_cpu_quota(v2: Path = CGROUP_V2, v1: Path = CGROUP_V1) -> float | None:
    """CPUs the cgroup allows (quota / period), or None when it sets no limit."""
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def default_threads() -> int:
    """Physical cores in the affinity, capped by the cgroup quota (rounded up), shared among the
    processes a launcher started on this machine (``LOCAL_WORLD_SIZE``); at least 1."""
    cores = physical_cores(allowed_cpus())
    quota = cgroup_cpu_quota()
    if quota:
        cores = min(cores, math.ceil(quota))
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, cores // (int(local) if local.isdigit() and int(local) > 0 else 1))


def chosen_threads(requested: int | None = None) -> int:
    """``requested``, else ``OMP_NUM_THREADS`` (a positive integer), else ``default_threads()``."""
    if requested is not None:
        return requested
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(from_env) if from_env.isdigit() and int(from_env) > 0 else default_threads()


def set_threads(requested: int | None = None) -> int:
    """Give torch the chosen thread count (``chosen_threads``); the count."""
    import torch

    threads = chosen_threads(requested)
    torch.set_num_threads(threads)
    return threads


@contextmanager
def tokenizer_threads_off() -> Iterator[None]:
    """``TOKENIZERS_PARALLELISM=false`` inside (the user's setting restored after): while torch
    computes, and before a loader forks workers, the Rust tokenizer must not start threads."""
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous
