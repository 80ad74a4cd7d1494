"""``python -m convext demo``: train a small CNN built from :mod:`convext.nn` on handwritten digits.

The data is scikit-learn's 8x8 digits set (1797 images shipped inside the
package, no download). The network is LeNet-style::

    conv 3x3 (1->16, pad 1) -> ReLU -> max-pool 2   # 16 x 4 x 4
    conv 3x3 (16->32, pad 1) -> ReLU -> max-pool 2  # 32 x 2 x 2
    flatten -> linear 128->64 -> ReLU -> linear 64->10

trained with Adam and cross-entropy. A progress bar per epoch shows the
running loss and accuracy; the last printed line is ``test accuracy: 0.xxxx``
on a held-out, stratified quarter of the data. Pictures of the training
curves, the learned first-layer filters and one digit's feature maps are
written as PNG to ``--out``.

Needs the ``demo`` extra: ``pip install "convext[demo]"``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import convext
from convext import nn
from convext.optim import Adam

__all__ = ["main", "build_model"]

_INSTALL_HINT = 'pip install "convext[demo]"'


def build_model(rng: np.random.Generator | int | None = None) -> nn.Sequential:
    """The demo's LeNet-style network for 1x8x8 inputs and 10 classes.

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        Source (or seed) of the initial weights.

    Returns
    -------
    convext.nn.Sequential
        The untrained model (float32).
    """
    gen = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=gen),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, rng=gen),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 64, rng=gen),
        nn.ReLU(),
        nn.Linear(64, 10, rng=gen),
    )


def _parse_args(argv: list[str]) -> argparse.Namespace:
    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        return value

    parser = argparse.ArgumentParser(
        prog="python -m convext demo",
        description="Train a LeNet-style CNN built from convext.nn on scikit-learn's 8x8 digits.",
    )
    parser.add_argument("--epochs", type=positive, default=15, help="training epochs (default: 15)")
    parser.add_argument("--threads", type=positive, default=None, help="convext threads (default: unchanged)")
    parser.add_argument("--out", type=Path, default=Path("convext-demo"), help="folder for the PNGs (default: ./convext-demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation and shuffling (default: 0)")
    parser.add_argument("--batch-size", type=positive, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default: 0.003)")
    return parser.parse_args(argv)


def _load_data(seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """Digits as standardised (N, 1, 8, 8) float32 arrays, split 75/25, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.25, stratify=digits.target, random_state=seed
    )
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def _accuracy(model: nn.Module, x: NDArray[np.float32], y: NDArray[np.int64], batch: int = 512) -> float:
    correct = sum(int((model(x[i : i + batch]).argmax(axis=1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def _save_curves(path: Path, history: dict[str, list[float]]) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["loss"], marker="o")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.plot(epochs, history["train_acc"], marker="o", label="train")
    ax_acc.plot(epochs, history["test_acc"], marker="o", label="test")
    ax_acc.set(title="accuracy", xlabel="epoch", ylabel="fraction correct")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=100)


def _save_filters(path: Path, weight: NDArray[np.floating]) -> None:
    from matplotlib.figure import Figure

    count = weight.shape[0]
    cols = 8
    rows = -(-count // cols)
    fig = Figure(figsize=(cols * 1.1, rows * 1.2 + 0.5), layout="constrained")
    fig.suptitle(f"first-layer filters ({weight.shape[2]}x{weight.shape[3]}, {count} of them)")
    limit = float(np.abs(weight).max()) or 1.0
    for i, ax in enumerate(fig.subplots(rows, cols, squeeze=False).ravel()):
        ax.set_axis_off()
        if i < count:
            ax.imshow(weight[i, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(i), fontsize=8)
    fig.savefig(path, dpi=100)


def _save_feature_maps(path: Path, model: nn.Sequential, image: NDArray[np.float32], label: int) -> None:
    """The digit, the activations after each conv+ReLU and pooling stage, and the class probabilities."""
    from matplotlib.figure import Figure

    stages: list[tuple[str, NDArray[np.floating]]] = [("input digit", image[None])]
    x: Any = image[None]
    convs = pools = 0
    for layer in model:
        x = layer(x)
        if x.ndim != 4:
            continue
        if isinstance(layer, nn.Conv2d):
            convs += 1
        elif isinstance(layer, nn.ReLU):
            stages.append((f"conv {convs} + ReLU", x))
        elif isinstance(layer, nn.MaxPool2d):
            pools += 1
            stages.append((f"max-pool {pools}", x))
    logits = x[0]
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()

    cols = 16
    rows = len(stages) + 2  # the probabilities take two rows
    fig = Figure(figsize=(cols * 0.75, rows * 1.0))
    grid = fig.add_gridspec(rows, cols, left=0.05, right=0.99, top=0.95, bottom=0.07, hspace=0.55, wspace=0.08)
    for row, (title, act) in enumerate(stages):
        maps = act[0]
        shown = min(cols, maps.shape[0])
        for c in range(shown):
            ax = fig.add_subplot(grid[row, c])
            ax.set_axis_off()
            ax.imshow(maps[c], cmap="gray" if row == 0 else "viridis")
            if c == 0:
                size = f"{shown} of {maps.shape[0]} channels" if shown < maps.shape[0] else f"{shown} channel(s)"
                ax.set_title(f"{title}: {size}, {maps.shape[1]}x{maps.shape[2]}", fontsize=8, loc="left")
    ax = fig.add_subplot(grid[len(stages) :, :])
    ax.bar(np.arange(10), probs, color=["tab:green" if d == label else "tab:gray" for d in range(10)])
    ax.set_xticks(np.arange(10))
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"softmax output (true label {label})", fontsize=9)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Run the demo.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments after ``demo`` (``--epochs N``, ``--threads N``,
        ``--out DIR``, ``--seed S``, ``--batch-size B``, ``--lr LR``);
        ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        0 on success, 1 if the demo's optional dependencies are missing.
    """
    args = _parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        from tqdm import tqdm
    except ImportError as exc:
        print(
            f"convext demo needs scikit-learn, matplotlib and tqdm ({exc.name or exc} is missing): {_INSTALL_HINT}",
            file=sys.stderr,
        )
        return 1

    if args.threads is not None:
        convext.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    x_train, x_test, y_train, y_test = _load_data(args.seed)
    model = build_model(rng)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=args.lr)
    print(
        f"convext demo: {len(x_train)} training / {len(x_test)} test digits, "
        f"{sum(p.data.size for p in model.parameters())} parameters, {convext.get_num_threads()} thread(s)",
        flush=True,
    )

    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(len(x_train))
        seen = correct = 0
        total_loss = 0.0
        batches = range(0, len(order), args.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch:2d}/{args.epochs}", unit="batch", leave=True, file=sys.stderr)
        for first in bar:
            idx = order[first : first + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            model.backward(loss_fn.backward())
            optimizer.step()
            seen += len(idx)
            total_loss += loss * len(idx)
            correct += int((logits.argmax(axis=1) == yb).sum())
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        model.eval()
        test_acc = _accuracy(model, x_test, y_test)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", test_acc=f"{test_acc:.4f}")
        bar.close()
        history["loss"].append(total_loss / seen)
        history["train_acc"].append(correct / seen)
        history["test_acc"].append(test_acc)
    elapsed = time.perf_counter() - start

    args.out.mkdir(parents=True, exist_ok=True)
    _save_curves(args.out / "training_curves.png", history)
    _save_filters(args.out / "first_layer_filters.png", model[0].weight.data)  # type: ignore[attr-defined]
    _save_feature_maps(args.out / "feature_maps.png", model, x_test[0], int(y_test[0]))
    print(f"trained {args.epochs} epochs in {elapsed:.1f} s; pictures in {args.out}", flush=True)
    print(f"test accuracy: {history['test_acc'][-1]:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
