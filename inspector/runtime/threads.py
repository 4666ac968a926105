"""CPU threads: the usable cores, torch's thread count, and the thread variables cleaned before torch loads.

No torch at import: the CLI's main cleans OMP_NUM_THREADS and its kind here before any command runs, and
`use_threads` imports torch only when a command sets its pool.
"""

from __future__ import annotations

import os

from inspector.errors import InspectError


def default_threads() -> int:
    """Torch CPU threads when --threads is not given: OMP_NUM_THREADS if set, else half the usable cores.

    On a machine whose other processes keep cores busy, an intra-op pool as wide as the machine
    stalls at every barrier waiting for a descheduled thread. SmolLM2 decoding on 2 cores, measured
    by benchmarks/bench_threads.py: quiet, 1 thread 14.2 tokens/s and 2 threads 13.5; with one core
    busy, 1 thread 13.9 and 2 threads 4.4. Half the cores leaves room for a neighbour at little
    cost when the machine is quiet (docs/run.md, "Threads and a busy machine").
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    cores = usable_cores()
    if env.isascii() and env.isdigit() and len(env) < 8 and int(env) > 0:
        return min(int(env), cores)
    return max(1, cores // 2)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def sanitize_thread_env() -> None:
    """Before torch loads (its OpenMP and BLAS pools read these once): a thread count that is not a
    positive integer, or is over the usable cores, is set to the cores. Called by the CLI's main."""
    cores = usable_cores()
    for name in THREAD_VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) < 8 and 1 <= int(text) <= cores):
            os.environ[name] = str(cores)


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (--threads, else `default_threads()`), at most the usable
    cores (a wider pool only waits on itself); returns it."""
    import torch

    n = default_threads() if threads is None else threads
    if n < 1:
        raise InspectError(f"--threads must be at least 1, got {n}")
    cores = usable_cores()
    if n > cores:
        from inspector.errors import warn

        warn(f"--threads {n:,} is more than the {cores} usable cores; using {cores}")
        n = cores
    torch.set_num_threads(n)
    return n
