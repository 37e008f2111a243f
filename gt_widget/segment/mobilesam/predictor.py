"""``SamPredictor``: the low-level MobileSAM interface (upstream ``SamPredictor`` semantics).

Kernel side only. ``set_image`` runs the image encoder once per image (expensive, ~1 s on 2 CPU
cores); ``predict`` runs the prompt encoder and mask decoder for one prompt set (cheap, tens of ms).

Conventions: images are RGB uint8 (H, W, 3); coordinates are (x, y) pixels of the *original* image
(floats allowed); boxes are XYXY in the same pixels; masks come back as bool (C, H, W) at the original
resolution; ``low_res_logits`` are (C, 256, 256) float32 and can be fed back as ``mask_input``.

Thread safety: ``set_image`` may run in a background thread while another thread calls ``predict``:
the per-image state is an immutable snapshot swapped in atomically when the embedding is ready, so a
concurrent ``predict`` uses either the old image or the new one, never a mix. Calls are otherwise
meant for one caller at a time.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gt_widget.errors import ImageLoadError, PromptError
from gt_widget.segment.mobilesam import blank_cache
from gt_widget.segment.mobilesam.model import MobileSam
from gt_widget.segment.mobilesam.transforms import LOW_RES, preprocess, scale_boxes, scale_coords, upscale_logits

PRECISIONS = ("fp32", "bf16")
"""Encoder precisions ``SamPredictor`` accepts."""

ENCODE_AREAS = ("full", "real", "real-zeros")
"""What ``set_image`` encodes: the whole padded square, or only the image's own area (see ``SamPredictor``)."""

_BLANK: weakref.WeakKeyDictionary[MobileSam, dict[tuple[int, str], torch.Tensor]] = weakref.WeakKeyDictionary()
_BLANK_LOCK = threading.Lock()
_BLANK_COMPUTE = threading.Lock()  # held while a blank embedding is computed (bounded: encoder pauses time out)


@dataclass(frozen=True)
class _ImageState:
    embedding: torch.Tensor  # (1, 256, e, e)
    original_size: tuple[int, int]  # (H, W)
    input_size: tuple[int, int]  # (h, w) after resizing to the model's long side
    decoder_cache: dict[Any, Any] = field(default_factory=dict, compare=False)  # dies with this embedding


class SamPredictor:
    """Embeds one image at a time and predicts masks for point / box / mask prompts on it.

    ``image_size`` is the encoder input side S (multiple of 16; default 1024, what the model was trained
    on). A smaller S (e.g. 768 or 512) makes ``set_image`` roughly (S/1024)^2 as expensive at some
    quality cost; the decoder then works on an S/16 embedding grid and its logits are resampled to/from
    the usual 256x256 so ``low_res_logits`` / ``mask_input`` keep one shape.

    ``precision="bf16"`` runs the image encoder under bfloat16 autocast (about 2x faster on CPUs with
    AVX512-BF16/AMX; the embedding then differs by ~2% of its scale, outside the golden tolerances, so it
    is opt-in; measure its mask cost with benchmarks/bench_latency.py). ``decoder_precision``
    (default fp32) is the mask decoder's (``MaskDecoder.forward``'s ``dtype``; IoU and logits stay fp32).

    ``encode_area="real"`` encodes only the resized image's own area rounded up to a multiple of 16 (e.g.
    1024 x 576 for a 16:9 frame, not the zero padding below it), then fills the rest of the S/16 grid with
    the embedding the full encoder gives an all-padding input (computed once per model, precision and S,
    and kept on disk for models with verified weights: ``blank_cache``);
    ``"real-zeros"`` fills it with zeros. Both change the embedding near the padding's edge, so they are
    opt-in (the fast batch recipe); ``"full"`` (default) is the upstream encoder, bit for bit.
    """

    def __init__(
        self,
        model: MobileSam,
        image_size: int = 1024,
        precision: str = "fp32",
        encode_area: str = "full",
        decoder_precision: str = "fp32",
    ) -> None:
        if image_size % 16 or not 256 <= image_size <= 2048:
            raise ValueError(f"image_size must be a multiple of 16 in [256, 2048], got {image_size}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if encode_area not in ENCODE_AREAS:
            raise ValueError(f"encode_area must be one of {ENCODE_AREAS}, got {encode_area!r}")
        if decoder_precision not in PRECISIONS:
            raise ValueError(f"decoder_precision must be one of {PRECISIONS}, got {decoder_precision!r}")
        self.decoder_precision = decoder_precision
        self.model = model.eval()
        self.image_size = int(image_size)
        self.precision = precision
        self.encode_area = encode_area
        self._state: _ImageState | None = None
        self._set_lock = threading.Lock()
        self._dense_pe: torch.Tensor | None = None

    # -- image ---------------------------------------------------------------------------------------

    @property
    def is_image_set(self) -> bool:
        return self._state is not None

    @property
    def original_size(self) -> tuple[int, int]:
        """(H, W) of the current image."""
        return self._require().original_size

    @property
    def input_size(self) -> tuple[int, int]:
        """(h, w) of the current image after resizing its long side to ``image_size``."""
        return self._require().input_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _require(self) -> _ImageState:
        state = self._state
        if state is None:
            raise PromptError("no image is set: call set_image(image) before predict()")
        return state

    def set_image(self, image: np.ndarray) -> None:
        """Compute and keep the embedding of an RGB uint8 (H, W, 3) image (the expensive step)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            desc = (
                f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            )
            raise ImageLoadError(
                f"set_image needs an RGB uint8 array of shape (H, W, 3), got a {desc}; "
                "convert it with gt_widget.imageio.load_image(...)"
            )
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ImageLoadError(f"set_image got an empty image of shape {image.shape}")
        x, input_size = preprocess(image, self.image_size)
        if self.encode_area == "full":
            emb = self._encoder(x)
        else:
            rh, rw = (-(-v // 16) * 16 for v in input_size)
            real = self._encoder(x[:, :, :rh, :rw])
            if self.encode_area == "real":
                emb = self._blank().clone()
            else:
                emb = real.new_zeros(1, real.shape[1], self.image_size // 16, self.image_size // 16)
            emb[:, :, : rh // 16, : rw // 16] = real
        state = _ImageState(emb, (int(image.shape[0]), int(image.shape[1])), input_size)
        with self._set_lock:
            self._state = state

    def _encoder(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (1, 3, h, w) input (h, w multiples of 16) -> float32 (1, 256, h/16, w/16) embedding."""
        bf16 = self.precision == "bf16"
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            emb = self.model.image_encoder(x.to(self.device))
        return emb.float()

    def _blank(self) -> torch.Tensor:
        """The full encoder's embedding of an all-padding (zero) input, cached per model/size/precision.

        Computed once even when several threads ask at once (the batch engine's model workers all start
        with it): one full encoder run, the others wait for it instead of repeating it. A model loaded
        from the verified weights also finds it in, or adds it to, the disk cache (``blank_cache``), so
        only the first process on a machine pays the encoder run."""
        key = (self.image_size, self.precision)
        with _BLANK_LOCK:
            cached = _BLANK.setdefault(self.model, {}).get(key)
        if cached is not None and cached.device == self.device:
            return cached
        disk_key, computed = None, None
        with _BLANK_COMPUTE:
            with _BLANK_LOCK:
                cached = _BLANK[self.model].get(key)
            if cached is None or cached.device != self.device:
                disk_key = blank_cache.blank_key(self.model, self.image_size, self.precision)
                stored = None if disk_key is None else blank_cache.load_blank(disk_key, self.image_size)
                if stored is not None:
                    cached = stored.to(self.device)
                else:
                    cached = computed = self._encoder(torch.zeros(1, 3, self.image_size, self.image_size))
                with _BLANK_LOCK:
                    _BLANK[self.model][key] = cached
        if computed is not None and disk_key is not None:  # written outside the lock: waiters go on meanwhile
            blank_cache.store_blank(disk_key, computed)
        return cached

    def get_image_embedding(self) -> torch.Tensor:
        """(1, 256, e, e) embedding of the current image (e = image_size / 16, 64 by default)."""
        return self._require().embedding

    def set_embedding(
        self,
        embedding: torch.Tensor,
        original_size: tuple[int, int],
        input_size: tuple[int, int],
        decoder_cache: dict[Any, Any] | None = None,
    ) -> None:
        """Restore a cached embedding (from ``get_image_embedding`` of a predictor with the same
        ``image_size``) together with the image's (H, W) and resized (h, w) sizes.

        ``decoder_cache``: the dict of decoder parts computed from this embedding alone, owned by whoever
        keeps the embedding (a segmenter's per-image state), so they survive switching away and back; the
        caller guarantees it belongs to exactly this embedding. None: a fresh one, dropped with it."""
        e = self.image_size // 16
        if tuple(embedding.shape) != (1, 256, e, e):
            raise PromptError(
                f"embedding must have shape (1, 256, {e}, {e}) for image_size={self.image_size}, "
                f"got {tuple(embedding.shape)}; it was computed with another image_size"
            )
        oh, ow = int(original_size[0]), int(original_size[1])
        h, w = int(input_size[0]), int(input_size[1])
        if min(oh, ow, h, w) < 1 or max(h, w) != self.image_size:
            raise PromptError(
                f"sizes do not fit: original_size={original_size}, input_size={input_size} "
                f"(input_size's long side must be {self.image_size})"
            )
        with self._set_lock:
            self._state = _ImageState(
                embedding.detach().to(self.device, torch.float32),
                (oh, ow),
                (h, w),
                {} if decoder_cache is None else decoder_cache,
            )

    def prime_decoder(self) -> None:
        """Compute the decoder's image-only parts for the current embedding now (into its decoder cache),
        so the first click on the image does not pay them (~5 ms of a ~35 ms predict)."""
        state = self._require()
        dtype = torch.bfloat16 if self.decoder_precision == "bf16" else torch.float32
        with torch.inference_mode():
            dense = self.model.prompt_encoder.no_mask_dense(1, self.image_size)
            self.model.mask_decoder.first_side(state.embedding, self._dense(), dense, dtype, state.decoder_cache)

    def reset_image(self) -> None:
        """Forget the current image."""
        with self._set_lock:
            self._state = None

    # -- prompts -------------------------------------------------------------------------------------

    def _dense(self) -> torch.Tensor:
        pe = self._dense_pe
        if pe is None or pe.device != self.device:
            with torch.inference_mode():
                pe = self.model.prompt_encoder.get_dense_pe(self.image_size // 16).to(self.device)
            self._dense_pe = pe
        return pe

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        smooth: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one prompt set on the current image.

        ``smooth`` > 0: the masks (not the returned low-res logits) come from logits blurred with a
        Gaussian of that sigma in low-res pixels, which removes the decoder's period-4 grid (see
        ``smooth_logits``).

        ``point_coords`` (N, 2) (x, y) original pixels with ``point_labels`` (N,) (1 positive, 0 negative);
        ``box`` (4,) XYXY original pixels; ``mask_input`` (1, 256, 256) low-res logits of a previous call.
        Returns masks (C, H, W) bool (float32 logits if ``return_logits``), iou_predictions (C,) float32
        and low_res_logits (C, 256, 256) float32; C = 3 if ``multimask_output`` else 1.
        """
        state = self._require()
        coords_t = labels_t = box_t = mask_t = None
        if point_coords is not None or point_labels is not None:
            coords, labels = _check_points(point_coords, point_labels)
            scaled = scale_coords(coords, state.original_size, state.input_size)
            coords_t = torch.as_tensor(scaled, dtype=torch.float32, device=self.device)[None]
            labels_t = torch.as_tensor(labels, dtype=torch.int64, device=self.device)[None]
        if box is not None:
            b = _check_box(box)
            box_t = torch.as_tensor(scale_boxes(b, state.original_size, state.input_size), dtype=torch.float32)
            box_t = box_t.to(self.device)
        if mask_input is not None:
            mask_t = torch.as_tensor(_check_mask_input(mask_input), dtype=torch.float32, device=self.device)[None]
        masks, iou, low = self.predict_torch(
            coords_t,
            labels_t,
            box_t,
            mask_t,
            multimask_output,
            return_logits=return_logits,
            _state=state,
            smooth=smooth,
        )
        return masks[0], iou[0], low[0]

    def predict_torch(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        _state: _ImageState | None = None,
        smooth: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batched variant: B prompt sets already in the *input frame* (see ``transforms.scale_coords``).

        ``point_coords`` (B, N, 2), ``point_labels`` (B, N), ``boxes`` (B, 4), ``mask_input`` (B, 1, 256, 256).
        Returns numpy masks (B, C, H, W), iou (B, C), low-res logits (B, C, 256, 256).
        """
        state = _state or self._require()
        e = self.image_size // 16
        points = None if point_coords is None or point_labels is None else (point_coords, point_labels)
        with torch.inference_mode():
            if mask_input is not None and mask_input.shape[-1] != 4 * e:
                mask_input = F.interpolate(mask_input, (4 * e, 4 * e), mode="bilinear", align_corners=False)
            sparse, dense = self.model.prompt_encoder(points, boxes, mask_input, input_size=self.image_size)
            dtype = torch.bfloat16 if self.decoder_precision == "bf16" else torch.float32
            cache = state.decoder_cache if mask_input is None else None  # image-only parts, per embedding
            low, iou = self.model.mask_decoder(
                state.embedding, self._dense(), sparse, dense, multimask_output, dtype=dtype, cache=cache
            )
            if low.shape[-1] != LOW_RES:
                low = F.interpolate(low, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
            shown = smooth_logits(low, smooth) if smooth > 0 else low
            masks = np.stack(
                [
                    upscale_logits(
                        low_b,
                        state.input_size,
                        state.original_size,
                        model_size=self.image_size,
                        return_logits=return_logits,
                        threshold=self.model.mask_threshold,
                    )
                    for low_b in shown.cpu()
                ]
            )
            return masks, iou.cpu().numpy().astype(np.float32), low.cpu().numpy().astype(np.float32)


def smooth_logits(low: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, r, r) logits blurred by a separable Gaussian of ``sigma`` low-res pixels (reflect padding).

    MobileSAM's decoder upsamples each 16-px embedding cell to 4x4 logits with two stride-2 transposed
    convolutions, which leaves a period-4 template in the 256x256 logits; where the logits are near 0
    (ambiguous regions) its sign flips in a regular grid, the "lattice of dots" a threshold shows. A
    Gaussian with sigma 1 damps that frequency to ~29% (sigma 1.5: ~6%) and barely moves clear edges.
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).to(low.dtype)
    b, c, h, w = low.shape
    y = F.pad(low.reshape(b * c, 1, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def _check_points(coords: np.ndarray | None, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if coords is None or labels is None:
        raise PromptError("point_coords and point_labels must be given together")
    c = np.asarray(coords, dtype=np.float64)
    lab = np.asarray(labels)
    if c.ndim != 2 or c.shape[1] != 2:
        raise PromptError(f"point_coords must have shape (N, 2) of (x, y) pixels, got {c.shape}")
    if lab.shape != (c.shape[0],):
        raise PromptError(f"point_labels must have shape ({c.shape[0]},) to match point_coords, got {lab.shape}")
    if not np.isfinite(c).all():
        raise PromptError("point_coords contains NaN or infinity")
    if not np.isin(lab, (0, 1)).all():
        raise PromptError(f"point_labels must be 1 (positive) or 0 (negative), got {sorted(set(lab.tolist()))}")
    return c, lab.astype(np.int64)


def _check_box(box: np.ndarray) -> np.ndarray:
    b = np.asarray(box, dtype=np.float64)
    if b.size != 4:
        raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1) in pixels, got shape {b.shape}")
    b = b.reshape(4)
    if not np.isfinite(b).all():
        raise PromptError("box contains NaN or infinity")
    return b


def _check_mask_input(mask_input: np.ndarray) -> np.ndarray:
    m = np.asarray(mask_input, dtype=np.float32)
    if m.shape != (1, LOW_RES, LOW_RES):
        raise PromptError(
            f"mask_input must be (1, {LOW_RES}, {LOW_RES}) low-res logits (one row of a previous "
            f"predict()'s low_res_logits, e.g. low[best][None]), got shape {m.shape}"
        )
    return m
