"""Disk cache of the blank embedding: the image encoder's output for an all-padding (zero) input.

Kernel side. ``SamPredictor(encode_area="real")`` fills the padded part of an embedding from this
(1, 256, S/16, S/16) float32 tensor; computing it is one full S x S encoder run (~0.5 s on 2 cores, ~1 s
on one), paid by every process that starts with the fast recipe before its first image. Kept on disk it
is paid once per machine and configuration.

Where: ``cache_dir() / "blank"`` (``$GT_WIDGET_CACHE``, else ``~/.cache/gt_widget``; beside the weights),
one ``blank-<key hash>.pt`` per key, written atomically (temp file, fsync, ``os.replace``), so processes
that write it at once (two batch runs, Ray workers) leave one whole file; readers see a whole file or none.

Key: everything that decides the values -- the weights' verified sha256 (``MobileSam.weights_sha256``,
set by ``load_mobilesam``; a model without it is never cached), the input side S, the precision, the
encoder's structure after ``optimize_for_inference`` (module types, parameter names / shapes / dtypes,
NHWC flag), the source of the encoder code (``tiny_vit.py``, ``model.py``) and ``BLANK_CODE_VERSION``,
the torch version, the device (CPU: its kernel ISA; the encoder's output does not depend on the thread
count, checked on the Intel AMX host). The file holds the key too, and a load checks it, the shape, the
dtype and that every value is finite: a damaged, foreign or unreadable file reads as a miss and is
overwritten. A cache that cannot be read or written only costs the recompute, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

BLANK_CODE_VERSION = 1
"""Bump when the encoder's numerics change in a way the key does not see (e.g. ``SamPredictor._encoder``'s
autocast), so stale files stop matching."""

_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def blank_dir() -> Path:
    """``cache_dir() / "blank"`` (follows ``$GT_WIDGET_CACHE`` at call time)."""
    from gt_widget.segment.weights import cache_dir

    return cache_dir() / "blank"


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of the encoder's source files (another file content, another key)."""
    from gt_widget.segment.mobilesam import model, tiny_vit

    h = hashlib.sha256()
    for module in (tiny_vit, model):
        try:
            h.update(Path(str(module.__file__)).read_bytes())
        except (OSError, TypeError):  # no source file (frozen / zipped install): the version constant alone
            h.update(module.__name__.encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _device_id(device: str) -> str:
    """What selects the kernels on ``device``: the CPU's ISA, or the GPU's name and CUDA version."""
    if device.startswith("cuda"):
        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}:{torch.version.cuda}"
    from gt_widget.segment.mobilesam.runtime import cpu_flags

    flags = cpu_flags()
    isa = ",".join(f for f in _ISA_FLAGS if f in flags)
    return f"{device}:{torch.backends.cpu.get_cpu_capability()}:{isa}"


def _structure(model: Any) -> str:
    """Digest of the image encoder's structure: module types, parameter / buffer names, shapes, dtypes,
    and its NHWC flag (conv+BN folding and other inference rewrites change it)."""
    encoder = model.image_encoder
    h = hashlib.sha256()
    for name, module in encoder.named_modules():
        h.update(f"{name}:{type(module).__qualname__};".encode())
    for name, t in (*encoder.named_parameters(), *encoder.named_buffers()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    h.update(f"nhwc={bool(getattr(encoder, 'channels_last', False))}".encode())
    return h.hexdigest()[:16]


def blank_key(model: Any, image_size: int, precision: str) -> str | None:
    """The cache key (a JSON string) for ``model``'s blank embedding at side ``image_size`` and encoder
    ``precision``; None when the model carries no verified weights identity (then nothing is cached)."""
    sha = getattr(model, "weights_sha256", None)
    if not isinstance(sha, str) or not sha:
        return None
    fields = {
        "v": BLANK_CODE_VERSION,
        "weights": sha,
        "size": int(image_size),
        "precision": precision,
        "encoder": _structure(model),
        "code": _code_digest(),
        "torch": torch.__version__,
        "device": _device_id("cpu" if model.device.type == "cpu" else str(model.device)),
    }
    return json.dumps(fields, sort_keys=True)


def blank_path(key: str) -> Path:
    """The file of ``key`` in ``blank_dir()``."""
    return blank_dir() / f"blank-{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"


def load_blank(key: str, image_size: int) -> torch.Tensor | None:
    """The stored blank embedding of ``key`` as a CPU float32 (1, 256, S/16, S/16) tensor, or None when
    there is none or it does not pass the checks (any read or unpickling error counts as a miss)."""
    try:
        data = torch.load(blank_path(key), map_location="cpu", weights_only=True)
    except Exception:  # missing, unreadable, truncated, foreign: a miss (the caller recomputes and rewrites)
        return None
    e = int(image_size) // 16
    emb = data.get("embedding") if isinstance(data, dict) else None
    if (
        not isinstance(emb, torch.Tensor)
        or data.get("key") != key
        or emb.dtype != torch.float32
        or tuple(emb.shape) != (1, 256, e, e)
        or not bool(torch.isfinite(emb).all())
    ):
        return None
    return emb.contiguous()


def store_blank(key: str, embedding: torch.Tensor) -> bool:
    """Write ``embedding`` under ``key`` (atomically, readable by others); False when it could not be
    written (read-only or missing cache folder, full disk): the next process recomputes it then."""
    from gt_widget.fileio import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"key": key, "embedding": embedding.detach().to("cpu", torch.float32).contiguous()}, buf)
    try:
        path = atomic_write_bytes(blank_path(key), buf.getvalue(), mode=0o644)
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a home folder
        return False
    return path.is_file()
