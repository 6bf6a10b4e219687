"""`rocketc train --nproc N`: N local processes through torchrun's own launcher.

The elastic agent (what `torchrun` runs) starts N copies of `python -m rocketc train ...` with
torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...), hosts their c10d rendezvous on this
machine and, with no restarts allowed, stops them all the moment one fails. Each process then
trains as under a plain torchrun (see `distributed`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence

import torch

from rocketc.errors import TrainError
from rocketc.train.distributed import check_batch_split, first_line

__all__ = ["launch"]


def launch(
    nproc: int,
    argv: Sequence[str],
    *,
    batch_size: int,
    device: str = "cpu",
    port: int | None = None,
) -> None:
    """Run `python -m rocketc ARGV` in `nproc` processes on this machine under torchrun's agent.

    The agent hosts the rendezvous on 127.0.0.1:`port` (a free one when None) and, the moment
    one process fails, stops the others; that becomes a TrainError naming the first rank that
    failed and how. Each process prints its own errors; only rank 0 prints progress. What can
    be checked here (the batch split, the GPUs, the port) is, before any process starts.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_batch_split(batch_size, nproc)
    if device == "cuda" and nproc > torch.cuda.device_count():
        raise TrainError(
            f"--nproc {nproc} with train.device cuda needs {nproc} CUDA devices; this machine "
            f"has {torch.cuda.device_count()}"
        )
    if port is not None:
        _check_port_free(port)
    # As torchrun does: N processes share the cores instead of each starting one thread per core.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"rocketc-{os.getpid()}",
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{port or 0}",
        rdzv_configs={"is_host": True},
        max_restarts=0,
        monitor_interval=0.1,
    )
    with _agent_logs_quiet():
        try:
            elastic_launch(config, sys.executable)("-m", "rocketc", *argv)
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            how = (
                f"was killed by {failure.signal_name()}"
                if failure.exitcode < 0
                else f"exited with code {failure.exitcode} (its error is above)"
            )
            raise TrainError(
                f"rank {rank} of {nproc} (pid {failure.pid}) {how}; the other ranks were stopped"
            ) from None
        except SignalException as exc:
            raise TrainError(f"stopped by {exc.sigval.name}; --resume continues") from None
        except RendezvousError as exc:
            raise TrainError(
                f"could not start the workers' rendezvous: {first_line(exc)}"
            ) from None


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise TrainError(
                f"--master-port {port}: cannot listen there ({exc.strerror}); pick a free port "
                "or leave --master-port out to take any free one"
            ) from None


@contextlib.contextmanager
def _agent_logs_quiet() -> Iterator[None]:
    """The agent logs every start and stop; rocketc reports the outcome itself."""
    logger = logging.getLogger("torch.distributed.elastic")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
