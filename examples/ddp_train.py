"""Data-parallel training of a convext-backed PyTorch CNN with DistributedDataParallel.

Each process holds a replica of a small LeNet-style ``torch.nn`` model whose
convolution, pooling and ReLU layers were swapped for convext's by
:func:`convext.torch.convert`. DistributedDataParallel (gloo backend, processes
on localhost started with ``torch.multiprocessing``) averages the gradients
across processes after every backward pass; convext itself needs no change for
that, because its layers are ordinary autograd nodes that produce ordinary
parameter gradients.

Run::

    python examples/ddp_train.py --world-size 2 --epochs 5

Past one machine nothing changes but the launch: start the training function
with ``torchrun`` on every host (``torchrun --nnodes=H --nproc-per-node=P
--rdzv-endpoint=HOST:PORT``) and join the group with
``dist.init_process_group("gloo")`` (torchrun's environment provides rank,
world size and address) instead of :func:`setup`, which is localhost-only.

Data: scikit-learn's 8x8 digits if scikit-learn is installed, otherwise (or
with ``--synthetic``) noisy copies of ten random 8x8 templates.
"""
from __future__ import annotations

import argparse
import datetime
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from numpy.typing import NDArray
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import convext
import convext.torch as ct

__all__ = [
    "build_model",
    "load_data",
    "find_free_port",
    "setup",
    "run_workers",
    "train_worker",
    "gradient_worker",
    "ddp_gradients",
    "main",
]


def build_model(seed: int = 0) -> torch.nn.Module:
    """A LeNet-style CNN for 1x8x8 inputs, converted to convext layers.

    Parameters
    ----------
    seed : int
        Seed of PyTorch's default initialisation.

    Returns
    -------
    torch.nn.Module
        A ``torch.nn.Sequential`` whose Conv2d/ReLU/MaxPool2d are convext's.
    """
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 2 * 2, 10),
    )
    return ct.convert(model)


def load_data(synthetic: bool = False, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Images (N, 1, 8, 8) standardised to mean 0 / std 1, and labels (N,).

    Parameters
    ----------
    synthetic : bool
        Use generated data even if scikit-learn is installed.
    seed : int
        Seed of the synthetic data.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 images and int64 labels.
    """
    images: NDArray[Any]
    labels: NDArray[Any]
    try:
        if synthetic:
            raise ImportError
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, labels = digits.images, digits.target
    except ImportError:
        rng = np.random.default_rng(seed)
        templates = rng.uniform(0, 16, size=(10, 8, 8))
        labels = rng.integers(0, 10, size=2000)
        images = templates[labels] + rng.normal(0, 4, size=(2000, 8, 8))
    x = images.astype(np.float32)[:, None]
    x = (x - x.mean()) / x.std()
    return x, labels.astype(np.int64)


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Returns
    -------
    int
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(rank: int, world_size: int, port: int, timeout_s: float = 60.0) -> None:
    """Join the gloo process group on localhost; one compute thread per process.

    Parameters
    ----------
    rank : int
        This process's rank, 0 .. world_size - 1.
    world_size : int
        Number of processes.
    port : int
        TCP port of the rendezvous on 127.0.0.1.
    timeout_s : float
        How long collective operations may wait for the other processes.
    """
    # gloo picks its network interface from the hostname unless told; on
    # localhost the loopback device always works.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo0" if sys.platform == "darwin" else "lo")
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    # The processes share the machine's cores: keep each one single-threaded.
    torch.set_num_threads(1)
    convext.set_num_threads(1)


def run_workers(fn: Callable[..., None], world_size: int, args: tuple[Any, ...], timeout_s: float | None = None) -> None:
    """Run ``fn(rank, *args)`` in ``world_size`` spawned processes and wait for all of them.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name).
    world_size : int
        Number of processes.
    args : tuple
        Further arguments of ``fn``.
    timeout_s : float or None
        Kill the processes and raise if they run longer than this.

    Raises
    ------
    TimeoutError
        If the processes did not finish within ``timeout_s``.
    torch.multiprocessing.ProcessRaisedException
        If a process raised (with its traceback).
    """
    context = mp.start_processes(fn, args=args, nprocs=world_size, join=False, start_method="spawn")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if context.join(timeout=remaining):
            return
        if deadline is not None and time.monotonic() >= deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            for process in context.processes:
                process.join()
            raise TimeoutError(f"run_workers: {world_size} processes did not finish within {timeout_s} s")


def train_worker(rank: int, world_size: int, port: int, args: argparse.Namespace) -> None:
    """Train with DistributedDataParallel; rank 0 reports loss and accuracy.

    Parameters
    ----------
    rank : int
        This process's rank.
    world_size : int
        Number of processes.
    port : int
        Rendezvous port.
    args : argparse.Namespace
        The options of :func:`main`.
    """
    setup(rank, world_size, port)
    try:
        x, y = load_data(args.synthetic, args.seed)
        split = int(0.8 * len(x))
        order = np.random.default_rng(args.seed).permutation(len(x))
        train_idx, test_idx = order[:split], order[split:]
        train = TensorDataset(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]))
        sampler = DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
        # batch_size is per process: the global batch is world_size * batch_size.
        loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler)
        model = DistributedDataParallel(build_model(args.seed))  # broadcasts rank 0's weights
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        for epoch in range(1, args.epochs + 1):
            sampler.set_epoch(epoch)
            model.train()
            totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
            for xb, yb in loader:
                optimizer.zero_grad()
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                loss.backward()  # DDP all-reduces (averages) the gradients here
                optimizer.step()
                totals += torch.tensor([loss.item() * len(yb), (logits.argmax(1) == yb).sum().item(), len(yb)])
            dist.all_reduce(totals)
            if rank == 0:
                print(f"epoch {epoch}: loss {totals[0] / totals[2]:.4f}, train accuracy {totals[1] / totals[2]:.4f}", flush=True)
        if rank == 0:
            model.eval()
            with torch.no_grad():
                pred = model.module(torch.from_numpy(x[test_idx])).argmax(1).numpy()
            print(f"test accuracy: {(pred == y[test_idx]).mean():.4f}", flush=True)
        # Tear gloo down only once every rank is done: a rank that destroys its
        # group while a peer still talks to it can make that peer abort.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def gradient_worker(
    rank: int,
    world_size: int,
    port: int,
    state: dict[str, NDArray[Any]],
    x: NDArray[Any],
    y: NDArray[Any],
    out_dir: str,
) -> None:
    """One backward pass of DDP on this rank's shard of (x, y); save the averaged gradients.

    Parameters
    ----------
    rank : int
        This process's rank.
    world_size : int
        Number of processes; ``len(x)`` must be divisible by it.
    port : int
        Rendezvous port.
    state : dict of str to numpy.ndarray
        Weights of :func:`build_model`'s model.
    x, y : numpy.ndarray
        The global batch: images and labels.
    out_dir : str
        Folder where rank r writes ``grads_r.pt`` (name -> gradient tensor).
    """
    setup(rank, world_size, port)
    try:
        model = build_model()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        ddp = DistributedDataParallel(model)
        shard = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
        loss = F.cross_entropy(ddp(torch.from_numpy(x[shard])), torch.from_numpy(y[shard]))
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
        torch.save(grads, Path(out_dir) / f"grads_{rank}.pt")
        dist.barrier()  # as in train_worker: every rank done before teardown
    finally:
        dist.destroy_process_group()


def ddp_gradients(
    state: dict[str, NDArray[Any]], x: NDArray[Any], y: NDArray[Any], world_size: int = 2, timeout_s: float = 120.0
) -> list[dict[str, torch.Tensor]]:
    """The gradients each DDP rank holds after one backward pass on its shard of a global batch.

    Parameters
    ----------
    state : dict of str to numpy.ndarray
        Weights of :func:`build_model`'s model.
    x, y : numpy.ndarray
        The global batch, its length divisible by ``world_size``.
    world_size : int
        Number of processes.
    timeout_s : float
        Limit on the whole run.

    Returns
    -------
    list of dict of str to torch.Tensor
        Per rank, parameter name -> gradient.

    Raises
    ------
    ValueError
        If ``len(x)`` is not divisible by ``world_size``.
    TimeoutError
        If the processes do not finish in time.
    """
    if len(x) % world_size:
        raise ValueError(f"ddp_gradients: batch of {len(x)} is not divisible by world_size={world_size}")
    with tempfile.TemporaryDirectory() as out_dir:
        run_workers(gradient_worker, world_size, (world_size, find_free_port(), state, x, y, out_dir), timeout_s)
        return [torch.load(Path(out_dir) / f"grads_{r}.pt") for r in range(world_size)]


def main(argv: list[str] | None = None) -> int:
    """Parse the options and train with ``--world-size`` processes.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments; ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        0 on success.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2, help="number of processes (default: 2)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size per process (default: 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default: 0.003)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic data instead of the digits")
    args = parser.parse_args(argv)
    run_workers(train_worker, args.world_size, (args.world_size, find_free_port(), args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
