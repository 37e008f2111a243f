"""Automatic object proposals ("segment everything") from the current image's MobileSAM embedding.

Kernel side only. Conventions: (x, y) pixels of the original image; masks bool (H, W); boxes
(x0, y0, x1, y1) inclusive pixel bounds.

Method (after Segment Anything's automatic mask generator, written here for our model and numpy state):
1. a regular grid of ``points_per_side`` x ``points_per_side`` single positive clicks, each at the centre
   of its grid cell, goes through the prompt encoder and mask decoder ``points_per_batch`` at a time,
   3 masks per point (the decoder's whole / part / sub-part outputs), all on the image's existing
   embedding (no encoder run). The decoder is ``proposal_decoder.GridDecoder``: the model's decoder
   re-arranged for many prompts on one embedding (same function up to float rounding; bf16 matrix
   products when the segmenter's ``precision`` is bf16). Only points with a mask over
   ``pred_iou_thresh`` (predicted IoU comes before the masks) have their masks computed at all;
2. each mask is scored by the decoder's predicted IoU and by its *stability*: the IoU between the mask
   thresholded at logit ``+stability_offset`` and at ``-stability_offset`` (a mask whose outline moves
   when the threshold moves is unreliable). Both are computed on the 256x256 low-resolution logits,
   which is what keeps this cheap: only the survivors are ever upsampled to full resolution;
3. masks under ``pred_iou_thresh`` or ``stability_thresh`` or smaller than ``min_area`` (fraction of the
   image) are dropped; the rest are de-duplicated by greedy *mask* NMS (IoU of the low-resolution masks
   above ``nms_iou``), best predicted IoU first.

``propose`` can be stopped between decoder batches (``cancel``: a ``threading.Event`` or a callable
returning True), raising ``ProposalsCancelledError``; the widget uses this to get out of the user's way.
``ProposalCache`` keeps the proposals of the last few images, keyed by image content and settings.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gt_widget.errors import GtWidgetError, PromptError
from gt_widget.segment.base import Segmenter
from gt_widget.segment.proposal_decoder import GridDecoder

CancelCheck = threading.Event | Callable[[], bool] | None

UPSCALE_CHUNK = 4
"""Points whose masks are upscaled to low-resolution logits together (bounds the memory: ~30 MB a point)."""


class ProposalsCancelledError(GtWidgetError):
    """``propose`` was stopped through its ``cancel`` argument before it finished."""


@dataclass
class Proposal:
    """One automatic mask: bool (H, W) ``mask``, the decoder's predicted IoU ``score``, its ``stability``,
    its ``box`` (x0, y0, x1, y1 inclusive) and the grid ``point`` (x, y) that produced it."""

    mask: np.ndarray
    score: float
    stability: float
    box: tuple[int, int, int, int]
    point: tuple[float, float]

    @property
    def area(self) -> int:
        """Foreground pixels of ``mask``."""
        return int(np.count_nonzero(self.mask))

    def rle(self) -> dict[str, Any]:
        """``mask`` as COCO-style uncompressed RLE ({"size": [H, W], "counts": [...]}, column-major)."""
        from gt_widget.groundtruth.export import rle_encode

        return rle_encode(self.mask)


@dataclass(frozen=True)
class ProposalSettings:
    """Every knob of ``propose``. The thresholds are looser than Segment Anything's (0.88 / 0.95) because
    stability is measured on the coarser low-resolution logits; they were set, not tuned (benchmarks/README.md
    reports them on the odd half of DAVIS-345). ``pool`` > 1 average-pools the embedding so the decoder
    sees pool^2 fewer image tokens: measured on 3 DAVIS frames, ``pool=2`` halves the time but drops the
    best IoU per object by 5-20 points, so it stays 1."""

    points_per_side: int = 16
    points_per_batch: int = 16
    pred_iou_thresh: float = 0.8
    stability_thresh: float = 0.85
    stability_offset: float = 1.0
    nms_iou: float = 0.7
    min_area: float = 0.0005
    pool: int = 1


def _cancelled(cancel: CancelCheck) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def grid_points(points_per_side: int, shape: tuple[int, int]) -> np.ndarray:
    """(n*n, 2) float (x, y) points at the centres of an n x n grid over an image of ``shape`` = (H, W)."""
    if points_per_side < 1:
        raise PromptError(f"points_per_side must be at least 1, got {points_per_side}")
    h, w = shape
    t = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(t * w, t * h)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _mobilesam_state(segmenter: Segmenter) -> tuple[Any, Any]:
    """(model, image state) of a MobileSAM segmenter with an image set; a clear error otherwise."""
    from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter, SamImageState

    if not isinstance(segmenter, MobileSamSegmenter):
        raise PromptError(
            f"object proposals need the MobileSAM segmenter, not {getattr(segmenter, 'name', type(segmenter).__name__)!r}; "
            "run `gt-widget weights fetch` or pass weights=PATH to load_segmenter('mobilesam')"
        )
    state = segmenter.get_state()
    if not isinstance(state, SamImageState):
        raise PromptError("call set_image(image) before propose(): the segmenter has no image yet")
    return segmenter.model, state


def propose(
    segmenter: Segmenter,
    points_per_side: int = 16,
    *,
    settings: ProposalSettings | None = None,
    cancel: CancelCheck = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Proposal]:
    """Automatic mask proposals for the segmenter's current image, best predicted IoU first (module doc).

    ``settings`` overrides every knob (its ``points_per_side`` is replaced by the argument). ``cancel``
    is checked before each decoder batch; when it fires, ``ProposalsCancelledError`` is raised. ``progress``
    is called with (points done, points total) after each batch. Reuses the image's embedding.
    """
    import torch

    from gt_widget.segment.mobilesam.transforms import LOW_RES, MAX_CHUNK_ELEMENTS, scale_coords, upscale_logits

    cfg = settings or ProposalSettings()
    model, state = _mobilesam_state(segmenter)
    oh, ow = state.original_size
    ih, iw = state.input_size
    e = int(state.embedding.shape[-1])
    size = 16 * e  # the model input side S the embedding was computed at
    vh, vw = int(np.ceil(ih * LOW_RES / size)), int(np.ceil(iw * LOW_RES / size))  # image part of low-res
    points = grid_points(points_per_side, (oh, ow))
    scaled = scale_coords(points, (oh, ow), (ih, iw))
    min_pixels = cfg.min_area * vh * vw

    kept_logits: list[torch.Tensor] = []
    kept_iou: list[np.ndarray] = []
    kept_stab: list[np.ndarray] = []
    kept_point: list[np.ndarray] = []
    with torch.inference_mode():
        emb = state.embedding
        pool = max(int(cfg.pool), 1)
        dec_size, dec_e = size // pool, e // pool
        if pool > 1:  # a coarser decoder grid: pool^2 fewer image tokens per point
            emb = torch.nn.functional.avg_pool2d(emb, pool)
        bf16 = getattr(segmenter, "precision", "fp32") == "bf16"
        grid = GridDecoder(
            model.mask_decoder,
            emb.float(),
            model.prompt_encoder.get_dense_pe(dec_e),
            model.prompt_encoder.no_mask_embed.weight[0],
            torch.bfloat16 if bf16 else torch.float32,
        )
        for start in range(0, len(points), cfg.points_per_batch):
            if _cancelled(cancel):
                raise ProposalsCancelledError("proposals were cancelled")
            stop = min(start + cfg.points_per_batch, len(points))
            coords = torch.as_tensor(scaled[start:stop] / pool, dtype=torch.float32)[:, None, :]
            labels = torch.ones((stop - start, 1), dtype=torch.int64)
            sparse = model.prompt_encoder.embed_points(coords, labels, pad=True, input_size=dec_size)
            queries, keys = grid.transformer(sparse)
            iou_np = grid.iou(queries).numpy()  # (B, 3)
            good = iou_np >= cfg.pred_iou_thresh
            rows = np.flatnonzero(good.any(axis=1))  # only these points' masks are ever upscaled
            for r0 in range(0, rows.size, UPSCALE_CHUNK):
                sel = rows[r0 : r0 + UPSCALE_CHUNK]
                ts = torch.from_numpy(sel)
                low = grid.upscale(queries[ts], keys[ts])  # (b, 3, 4*dec_e, 4*dec_e)
                if low.shape[-1] != LOW_RES:
                    low = torch.nn.functional.interpolate(low, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
                which = good[sel]  # (b, 3)
                lk = low[torch.from_numpy(which)][:, :vh, :vw]  # (k, vh, vw) kept by predicted IoU
                hi = (lk > cfg.stability_offset).flatten(1).sum(1).float()
                lo = (lk > -cfg.stability_offset).flatten(1).sum(1).float()
                area = (lk > model.mask_threshold).flatten(1).sum(1).float()
                stab = (hi / lo.clamp(min=1)).numpy()
                ok = (stab >= cfg.stability_thresh) & (area.numpy() >= max(min_pixels, 1))
                idx = np.flatnonzero(ok)
                if idx.size:
                    kept_logits.append(lk[torch.from_numpy(idx)].contiguous())
                    kept_iou.append(iou_np[sel][which][idx])
                    kept_stab.append(stab[idx])
                    kept_point.append(np.repeat(points[start + sel], 3, axis=0)[which.ravel()][idx])
            del queries, keys
            if progress is not None:
                progress(stop, len(points))
        if not kept_logits:
            return []
        logits = torch.cat(kept_logits)
        scores = np.concatenate(kept_iou)
        stabs = np.concatenate(kept_stab)
        pts_all = np.concatenate(kept_point)
        order = mask_nms((logits > model.mask_threshold).flatten(1), scores, cfg.nms_iou)
        if _cancelled(cancel):
            raise ProposalsCancelledError("proposals were cancelled")
        padded = torch.zeros((len(order), LOW_RES, LOW_RES), dtype=torch.float32)
        padded[:] = -20.0  # outside the image: certainly background
        padded[:, :vh, :vw] = logits[torch.from_numpy(order)]
        # a few masks per call: the (k, S, S) intermediate stays small and upscale_logits takes its direct path
        step = max(1, min(8, MAX_CHUNK_ELEMENTS // max(oh * ow, 1)))
        masks = np.concatenate(
            [
                upscale_logits(
                    padded[i : i + step], (ih, iw), (oh, ow), model_size=size, threshold=model.mask_threshold
                )
                for i in range(0, len(order), step)
            ]
        )
    out: list[Proposal] = []
    for j, i in enumerate(order):
        m = np.asarray(masks[j], bool)
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if ys.size == 0:
            continue
        box = (int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1]))
        px, py = pts_all[i]
        out.append(Proposal(m, float(scores[i]), float(stabs[i]), box, (float(px), float(py))))
    return out


def mask_nms(masks: Any, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS over (N, P) bool torch masks, highest ``scores`` first.

    A mask is dropped when its IoU with an already kept mask exceeds ``iou_threshold``.
    """
    import torch

    order = np.argsort(-scores, kind="stable")
    m = masks[torch.from_numpy(order)].float()
    inter = m @ m.T
    area = m.sum(1)
    union = area[:, None] + area[None, :] - inter
    iou = (inter / union.clamp(min=1)).numpy()
    n = len(order)
    suppressed = np.zeros(n, bool)
    keep: list[int] = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, np.intp)]


class ProposalCache:
    """The proposals of the last ``max_images`` images, keyed by image content and settings (thread-safe).

    ``get(segmenter, ...)`` returns cached proposals for the segmenter's current image or computes them
    with ``propose`` (same arguments). A cancelled computation caches nothing.
    """

    def __init__(self, max_images: int = 8) -> None:
        self.max_images = int(max_images)
        self._items: OrderedDict[tuple[str, str], list[Proposal]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(segmenter: Segmenter, points_per_side: int, settings: ProposalSettings | None) -> tuple[str, str]:
        """(image key, settings key) of the segmenter's current image."""
        _model, state = _mobilesam_state(segmenter)
        cfg = settings or ProposalSettings()
        return state.key, repr([*sorted(asdict(cfg).items()), ("points_per_side", points_per_side)])

    def peek(
        self, segmenter: Segmenter, points_per_side: int = 16, settings: ProposalSettings | None = None
    ) -> list[Proposal] | None:
        """Cached proposals for the current image, or None (never computes)."""
        k = self.key(segmenter, points_per_side, settings)
        with self._lock:
            return self._items.get(k)

    def get(
        self,
        segmenter: Segmenter,
        points_per_side: int = 16,
        *,
        settings: ProposalSettings | None = None,
        cancel: CancelCheck = None,
    ) -> list[Proposal]:
        """Cached or freshly computed proposals for the segmenter's current image."""
        k = self.key(segmenter, points_per_side, settings)
        with self._lock:
            hit = self._items.get(k)
            if hit is not None:
                self._items.move_to_end(k)
                return hit
        found = propose(segmenter, points_per_side, settings=settings, cancel=cancel)
        with self._lock:
            self._items[k] = found
            while len(self._items) > self.max_images:
                self._items.popitem(last=False)
        return found


def proposal_at(proposals: list[Proposal], x: float, y: float) -> Proposal | None:
    """The proposal under pixel (x, y) for a pointer: the smallest one holding it (None if none).

    The smallest is the most specific object; ``proposals`` are typically nested (part, whole)."""
    best: Proposal | None = None
    for p in proposals:
        h, w = p.mask.shape
        xi, yi = round(x), round(y)
        if 0 <= xi < w and 0 <= yi < h and p.mask[yi, xi] and (best is None or p.area < best.area):
            best = p
    return best
