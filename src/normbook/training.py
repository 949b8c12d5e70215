"""A small CIFAR-10 CNN, with or without BatchNorm, and a seeded train/evaluate loop that logs to TensorBoard.

:func:`small_cnn` builds the same network with or without ``BatchNorm2d`` after each
convolution, from the same initial weights. :func:`train` runs seeded mini-batch SGD
with a tqdm bar (silenced by ``TQDM_DISABLE=1``) and, every epoch, writes loss, accuracy and per-layer activation
histograms to a TensorBoard event file (read back with ``normbook.tensorboard``).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["small_cnn", "standardize", "predict", "evaluate", "train", "freeze_bn_stats"]

Device = Union[str, torch.device]


def freeze_bn_stats(model: nn.Module) -> list[str]:
    """Put every batch-norm layer of ``model`` in eval mode and return their names.

    They then normalize with their running statistics and stop updating them, while
    gradients still flow through them (and their ``weight``/``bias`` still train). Call it
    **after every** ``model.train()``, which puts them back in training mode. Covers
    BatchNorm1d/2d/3d, their lazy versions and SyncBatchNorm (every subclass of torch's
    ``_BatchNorm``); InstanceNorm and other layers are left as they are.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    frozen = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            frozen.append(name)
    return frozen


def small_cnn(batch_norm: bool, widths: Sequence[int] = (16, 32, 64), num_classes: int = 10, seed: Optional[int] = 0) -> nn.Sequential:
    """A CNN for (N, 3, 32, 32) images -> (N, num_classes) logits, with or without BatchNorm2d.

    Per width w: ``conv{i}`` (3x3, padding 1) [-> ``bn{i}``] -> ``relu{i}`` -> ``pool{i}`` (2x2 max),
    then global average pooling and a linear ``fc``. With BatchNorm the convolutions have no bias
    (the BatchNorm's mean subtraction would cancel it). With ``seed`` set, layer k is initialized
    from ``seed + k`` (without touching the global RNG), so both variants start from the same
    convolution and linear weights.
    """
    if not widths or any(int(w) < 1 for w in widths):
        raise ValueError(f"expected a non-empty sequence of positive widths, got {tuple(widths)}")
    if num_classes < 1:
        raise ValueError(f"expected num_classes >= 1, got {num_classes}")
    if seed is None:
        return _build_cnn(batch_norm, widths, num_classes)
    with torch.random.fork_rng(devices=[]):
        model = _build_cnn(batch_norm, widths, num_classes)
        for k, layer in enumerate(m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))):
            torch.manual_seed(seed + k)
            layer.reset_parameters()
    return model


def _build_cnn(batch_norm: bool, widths: Sequence[int], num_classes: int) -> nn.Sequential:
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    c_in = 3
    for i, w in enumerate(widths, start=1):
        layers[f"conv{i}"] = nn.Conv2d(c_in, w, 3, padding=1, bias=not batch_norm)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(w)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"pool{i}"] = nn.MaxPool2d(2)
        c_in = w
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(c_in, num_classes)
    return nn.Sequential(layers)


def standardize(x: Tensor, mean: Optional[Tensor] = None, std: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel standardization of images x (N, C, H, W): returns ``((x - mean) / std, mean (C,), std (C,))``.

    Without ``mean``/``std`` they are computed from ``x`` (use the training set's for the test set).
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"expected float images (N, C, H, W), got {x.dim()}D {tuple(x.shape)} of dtype {x.dtype}")
    if mean is None:
        mean = x.mean(dim=(0, 2, 3))
    if std is None:
        std = x.std(dim=(0, 2, 3))
    shape = (1, -1, 1, 1)
    return (x - mean.reshape(shape)) / std.reshape(shape), mean, std


def _check_data(x: Tensor, y: Tensor) -> None:
    if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"expected inputs (N, ...) and labels (N,), got {tuple(x.shape)} and {tuple(y.shape)}")


def predict(model: nn.Module, x: Tensor, batch_size: int = 256, device: Device = "cpu") -> Tensor:
    """Logits (N, classes) of ``model`` on x (N, ...), in batches of ``batch_size``, on ``device``; returned on CPU.

    Runs under ``torch.no_grad()`` and does NOT change the model's mode: call ``model.eval()``
    first for inference (in training mode BatchNorm uses each batch's statistics and updates
    its running statistics).
    """
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 256, device: Device = "cpu") -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on x (N, ...), labels y (N,); see :func:`predict` about the mode."""
    _check_data(x, y)
    logits = predict(model, x, batch_size, device)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def _log_epoch(writer, model: nn.Module, epoch: int, scalars: dict[str, float], hist_x: Optional[Tensor], device: Device) -> None:
    from .tensorboard import log_activation_histograms

    for tag, value in scalars.items():
        writer.add_scalar(tag, value, epoch)
    if hist_x is not None:
        was_training = model.training
        model.eval()  # inference activations; a training-mode pass would also move the running statistics
        log_activation_histograms(writer, model, hist_x.to(device), epoch)
        model.train(was_training)


def train(
    model: nn.Module,
    train_data: tuple[Tensor, Tensor],
    test_data: tuple[Tensor, Tensor],
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    seed: int = 0,
    device: Device = "cpu",
    logdir: Optional[Path] = None,
    hist_images: Optional[Tensor] = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train ``model`` with seeded mini-batch SGD; return one dict of metrics per epoch.

    ``train_data``/``test_data``: (images (N, 3, H, W), labels (N,)). Batches are drawn in an order
    fixed by ``seed``. A tqdm bar (stderr) shows progress to a reader running it; the environment
    variable ``TQDM_DISABLE=1``, set before tqdm is imported, switches it off (the book's stored
    outputs and its nbval runs are made that way). Each epoch's dict holds ``loss/train``,
    ``accuracy/train`` (averaged over the epoch's batches, training mode) and ``loss/test``,
    ``accuracy/test`` (eval mode); with ``logdir`` they are written to TensorBoard at step = epoch,
    with histograms of every Conv2d/BatchNorm2d/ReLU output on ``hist_images`` (eval mode) at steps
    0 (before training) to ``epochs``. The model is left in training mode.
    """
    from tqdm import tqdm

    _check_data(*train_data)
    _check_data(*test_data)
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"expected epochs >= 1 and batch_size >= 2, got epochs={epochs}, batch_size={batch_size}")
    x_train, y_train = train_data
    n = len(y_train)
    g = torch.Generator().manual_seed(seed)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(logdir))
        _log_epoch(writer, model, 0, {}, hist_images, device)
    history: list[dict[str, float]] = []
    steps = -(-n // batch_size)
    bar = tqdm(total=epochs * steps, desc=desc, file=sys.stderr, mininterval=1.0, ascii=True, ncols=90)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=g)
            total_loss, correct = 0.0, 0
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                x, y = x_train[idx].to(device), y_train[idx].to(device)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                bar.update(1)
            model.eval()
            test_loss, test_acc = evaluate(model, *test_data, device=device)
            model.train()
            metrics = {"loss/train": total_loss / n, "accuracy/train": correct / n,
                       "loss/test": test_loss, "accuracy/test": test_acc}
            history.append(metrics)
            bar.set_postfix(epoch=epoch, loss=f"{metrics['loss/train']:.3f}", test_acc=f"{test_acc:.3f}")
            if writer is not None:
                _log_epoch(writer, model, epoch, metrics, hist_images, device)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return history
