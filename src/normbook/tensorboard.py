"""TensorBoard for the book: a new folder per run, activation histograms, and reading event files back.

Writing goes through ``torch.utils.tensorboard.SummaryWriter``; this module adds

* :func:`new_run_dir`: a fresh folder ``runs/<name>-NNN`` for every run, so nothing
  logged earlier is overwritten or deleted;
* :func:`log_activation_histograms`: one histogram per layer output, captured with
  forward hooks on a copy of the model, so that logging never changes the model
  (a training-mode forward pass would move BatchNorm's running statistics);
* :func:`read_scalars`, :func:`read_images`, :func:`read_histograms`: what a run
  folder holds, read back with TensorBoard's own event-processing API
  (``EventAccumulator``), so a static page can draw what the TensorBoard app shows.

Close (or flush) a writer before reading its folder: events still in the
writer's buffer are not on disk yet.
"""

from __future__ import annotations

import io
import os
import re
from copy import deepcopy
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from . import book_root

__all__ = [
    "new_run_dir", "read_scalars", "read_images", "read_histograms", "rebin_histogram", "log_activation_histograms",
]

PathLike = Union[str, "os.PathLike[str]"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_EVENT_PREFIX = "events.out.tfevents"


def new_run_dir(name: str, root: Optional[PathLike] = None) -> Path:
    """Create and return a new, empty folder ``<root>/<name>-NNN`` (NNN: the first free 000-999).

    ``root`` defaults to ``book_root() / "runs"`` and is created when missing. The run
    folder itself is made with ``mkdir(exist_ok=False)``, so two runs (even two
    processes at once) never share a folder; nothing existing is reused, overwritten
    or deleted. ``name`` is one folder name: letters, digits, ``_``, ``.``, ``-``.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith("."):
        raise ValueError(
            f"expected a run name of letters, digits, '_', '.' or '-' (starting with a letter or digit), got {name!r}; "
            "pass a folder name such as 'sigmoid', not a path"
        )
    base = Path(root) if root is not None else book_root() / "runs"
    if base.exists() and not base.is_dir():
        raise NotADirectoryError(f"expected root to be a folder for runs, but {base} is a file; pass another root")
    base.mkdir(parents=True, exist_ok=True)
    for number in range(1000):
        folder = base / f"{name}-{number:03d}"
        try:
            folder.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(
        f"all 1000 run folders {name}-000 ... {name}-999 already exist in {base}; "
        "use another run name or move old runs elsewhere"
    )


def _accumulator(logdir: PathLike) -> Any:
    """Load every event in ``logdir`` (its own event files, not subfolders) into an EventAccumulator."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    folder = Path(logdir)
    if not folder.is_dir():
        raise FileNotFoundError(f"expected a TensorBoard run folder, but {folder} is not a folder")
    if not any(p.name.startswith(_EVENT_PREFIX) and p.is_file() for p in folder.iterdir()):
        raise FileNotFoundError(
            f"no TensorBoard event files ({_EVENT_PREFIX}.*) in {folder}; pass the folder a SummaryWriter "
            "wrote to (event files in subfolders are runs of their own), and close or flush the writer first"
        )
    keep_all = {kind: 0 for kind in (ea.SCALARS, ea.IMAGES, ea.HISTOGRAMS, ea.COMPRESSED_HISTOGRAMS,
                                      ea.AUDIO, ea.TENSORS)}
    return ea.EventAccumulator(str(folder), size_guidance=keep_all).Reload()


def read_scalars(logdir: PathLike) -> dict[str, list[tuple[int, float]]]:
    """Scalars written with ``add_scalar``: tag -> [(step, value)], sorted by step."""
    acc = _accumulator(logdir)
    return {tag: sorted(((e.step, float(e.value)) for e in acc.Scalars(tag)), key=lambda p: p[0])
            for tag in acc.Tags()["scalars"]}


def _decode_png(encoded: bytes) -> np.ndarray:
    """Decode one PNG into a uint8 array (H, W, C)."""
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        array = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"), dtype=np.uint8)
    return array.copy()


def read_images(logdir: PathLike) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Images written with ``add_image``/``add_images``: tag -> [(step, uint8 array (H, W, C))], sorted by step.

    ``add_images`` stores a batch (N, C, H, W) as ONE grid image per step: 8 images per
    row (fewer when N < 8), no padding, black where the last row is short; C is 3 (RGB)
    or 4 (RGBA). Float images were stored as ``uint8(clip(x * 255, 0, 255))`` (truncated).
    """
    acc = _accumulator(logdir)
    return {tag: sorted(((e.step, _decode_png(e.encoded_image_string)) for e in acc.Images(tag)),
                        key=lambda p: p[0])
            for tag in acc.Tags()["images"]}


def read_histograms(logdir: PathLike) -> dict[str, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Histograms written with ``add_histogram``: tag -> [(step, bucket_limits, bucket_counts)], sorted by step.

    Both arrays have shape (B,) (float64). As in TensorBoard, ``bucket_limits[i]`` is the
    RIGHT edge of bucket i (its left edge is ``bucket_limits[i - 1]``), and
    ``bucket_counts.sum()`` is the number of values logged.
    """
    acc = _accumulator(logdir)
    out: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for tag in acc.Tags()["histograms"]:
        events = [(e.step, np.asarray(e.histogram_value.bucket_limit, dtype=np.float64),
                   np.asarray(e.histogram_value.bucket, dtype=np.float64)) for e in acc.Histograms(tag)]
        out[tag] = sorted(events, key=lambda p: p[0])
    return out


def rebin_histogram(bucket_limits: np.ndarray, bucket_counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Spread a logged histogram's counts over new bins ``edges`` (E + 1,), as TensorBoard does to draw it: (E,).

    ``bucket_limits`` and ``bucket_counts`` (B,) come from :func:`read_histograms`; bucket
    i covers (bucket_limits[i - 1], bucket_limits[i]] (bucket 0: just bucket_limits[0]).
    A bucket's count is shared among the new bins in proportion to the overlap, so
    counts are preserved (the sum stays the same when ``edges`` span the limits) but
    a bucket that straddles a new edge is split evenly along its width.
    """
    limits = np.asarray(bucket_limits, dtype=np.float64)
    counts = np.asarray(bucket_counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if limits.ndim != 1 or limits.shape != counts.shape or limits.size == 0:
        raise ValueError(f"expected bucket_limits and bucket_counts of one shape (B,), got {limits.shape} and {counts.shape}")
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"expected edges as an increasing 1D array of at least 2 values, got shape {edges.shape}")
    left = np.concatenate([limits[:1], limits[:-1]])
    width = limits - left
    lo, hi = np.maximum(left[:, None], edges[None, :-1]), np.minimum(limits[:, None], edges[None, 1:])
    share = np.clip(hi - lo, 0, None) / np.where(width > 0, width, 1)[:, None]
    # Zero-width buckets (a single value) go whole to the bin holding that value.
    point = np.clip(np.searchsorted(edges, limits, side="right") - 1, 0, edges.size - 2)
    inside = (limits >= edges[0]) & (limits <= edges[-1])
    share[width <= 0] = 0
    share[(width <= 0) & inside, point[(width <= 0) & inside]] = 1
    return counts @ share


def log_activation_histograms(
    writer: Any,
    model: nn.Module,
    x: Tensor,
    step: int,
    layer_types: Sequence[type] = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
) -> dict[str, Tensor]:
    """Log a histogram of every ``layer_types`` module's output for one forward pass of ``model(x)``.

    Logging never changes ``model``: the forward pass runs on a deep copy of it, in
    the model's current mode, under ``torch.no_grad()``, with the global random state
    (CPU, and ``x``'s device) saved and restored. So a training-mode model is logged
    as a training step would compute it (BatchNorm normalizes with the statistics of
    ``x``), but its running statistics and ``num_batches_tracked`` stay as they were;
    a plain training-mode ``model(x)`` would move them, even under ``torch.no_grad()``.
    Call ``model.eval()`` first to log what inference computes (as
    ``normbook.training`` does). The copy costs the memory of one more model.

    Forward hooks capture each matching module's output (a detached copy, taken before
    any later in-place op can change it). Each output is written as
    ``writer.add_histogram(f"activations/{name}", output, step)`` with ``name`` from
    ``model.named_modules()`` (the class name for the model itself). Returns
    name -> output (same shape and device as the module's output), in the order the
    modules ran. ``x``: the model's input batch, e.g. (N, C, H, W). A model with
    uninitialized lazy modules is refused: do its dry run first.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be an nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x to be a Tensor (the model's input batch), got {type(x).__name__}")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"expected step to be a non-negative int, got {step!r}")
    if not callable(getattr(writer, "add_histogram", None)):
        raise TypeError(f"expected a SummaryWriter (something with add_histogram), got {type(writer).__name__}")
    types = tuple(layer_types)
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise TypeError(f"expected layer_types to be a non-empty sequence of nn.Module classes, got {layer_types!r}")
    if not any(isinstance(m, types) for m in model.modules()):
        found = sorted({type(m).__name__ for m in model.modules()})
        raise ValueError(
            f"model has no module of the types {[t.__name__ for t in types]} to log; its module types are {found}; "
            "pass the layer_types you want to see"
        )

    lazy = [repr(name) for name, m in model.named_modules()
            if isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params()]
    if lazy:
        raise ValueError(
            f"model has uninitialized lazy modules ({', '.join(lazy)}), which logging would have to initialize; "
            "run one forward pass (a dry run) first, then log"
        )

    captured: dict[str, Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, Tensor):
                raise TypeError(f"module {name!r} returned {type(output).__name__}, expected a Tensor to log")
            if name in captured:
                raise ValueError(f"module {name!r} ran more than once in one forward pass; "
                                 "its activations are ambiguous, so log a model that calls each module once")
            captured[name] = output.detach().clone()

        return hook

    copy = deepcopy(model)  # hooks and any state the forward pass changes live on the copy only
    for name, m in copy.named_modules():
        if isinstance(m, types):
            m.register_forward_hook(hook_for(name or type(m).__name__))
    # The CPU generator is always forked; an accelerator's only when x is on it. device_type is passed only then:
    # torch 2.9-2.12 reject device_type=None (it defaults to "cuda", untouched when devices is empty).
    on_device = x.device.type != "cpu"
    forked = {"devices": [x.device], "device_type": x.device.type} if on_device else {"devices": []}
    with torch.random.fork_rng(**forked), torch.no_grad():
        copy(x)
    for name, output in captured.items():
        writer.add_histogram(f"activations/{name}", output, step)
    return captured
