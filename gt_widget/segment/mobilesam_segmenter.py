"""MobileSAM behind the ``Segmenter`` API, with the extreme-points recipe measured in benchmarks/.

Kernel side only. Coordinates are (x, y) pixels of the original image; masks bool (H, W).

Recipe for 4 extreme points (defaults; every step is a constructor flag, measured in benchmarks/README.md):
1. zoomed pass (DEXTR-style, ``zoom="auto"``): when the points' box covers under ``zoom_below`` (30%) of
   the image, the image is re-encoded on a crop around the box (``zoom_context`` = 40% of its size on each
   side, snapped to 16 px) so the object fills the model's input (``zoom_size``, 1024: smaller sides are
   cheaper but measured worse, benchmarks/README.md; ``zoom_scale`` ties the side to the crop's and
   ``zoom_area="real"`` encodes only a non-square crop's own area, both opt-in, same file); this costs a second encoder run (~0.5 s on 2 free
   cores in fp32), cached per crop so corrective clicks in the same crop are cheap. ``zoom="off"`` gives
   the instant single-pass answer; ``predict_staged`` gives it first and the zoomed one through ``refine``;
2. prompts: in the crop, box + the 4 points as positive clicks *and* the box alone (``variants``), 3 masks
   each; on the full image, box + points (``full_variants``);
3. every candidate is scored by the model's predicted IoU times how well its bounding box fills the
   points' box (``select="combined"``, ``box_weight``); optional cues (closeness of the points to the
   mask, inward cover) and clean-up (``remove_blobs``, ``fill_holes``) are off because they did not help
   on DAVIS-345 / GrabCut-50.
Corrective clicks (``refine="upstream"``): box + points + all clicks with the previous prediction's
low-resolution logits as ``mask_input`` (in the same frame: full image or crop), one mask. Guard against
making it worse (``local_below``): when the new mask overlaps the previous one with IoU < 0.7 -- the model
redrew everything for one click -- only the connected change around the new click is applied. The other
refine modes ("guarded": retry without logits when a click is ignored; "ensemble"; "nologits") measured
worse on DAVIS-345 NoC (benchmarks/README.md).
A missed part: 4 extreme points on the part give the part's mask; the caller unions it with the object.
Boundary (``boundary="guided"``, the default; ``"off"`` = the thresholded upsampled logits): the chosen mask's
boundary is re-decided at full resolution by a guided filter of its logits in the frame the model saw
(``segment/boundary.py``); +0.38 mIoU on the held-out DAVIS half, ~7 ms p50 per full 854x480 frame
(benchmarks/README.md).

Threads (contract 1): encoder runs (``prepare``, a staged ``refine``, a crop encode) never hold the lock
that ``predict`` takes; background ones pause between encoder blocks while a ``predict`` is in flight
(``runtime.InteractiveGate``); torch threads are sized per call to the cores other processes leave free
(``threads=N`` fixes them). ``precision``: bf16 encoder only on CPUs with native bf16 (``runtime``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from gt_widget.errors import PromptError
from gt_widget.imageio import ImageSource, load_image
from gt_widget.segment.base import (
    Candidate,
    Prediction,
    StagedPrediction,
    box_from_points,
    require_object_prompt,
    validate_box,
    validate_clicks,
    validate_extreme_points,
)
from gt_widget.segment.boundary import BoundarySettings, refine_boundary
from gt_widget.segment.recipes import (
    box_iou,
    distance_to_mask,
    extreme_consistency,
    fill_small_holes,
    inward_cover,
    keep_components_near,
    mask_bbox,
    order_extreme_points,
)

ZoomMode = Literal["off", "auto", "always"]
SelectMode = Literal["iou", "consistency", "combined", "box"]
RefineMode = Literal["upstream", "guarded", "ensemble", "nologits"]


@dataclass
class SamImageState:
    """Per-image state: the RGB image, its encoder embedding and sizes, and cached crop embeddings."""

    image: np.ndarray
    embedding: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    key: str
    crops: OrderedDict[tuple[int, int, int, int], SamImageState] = field(default_factory=OrderedDict)
    image_size: int = 1024  # the encoder input side the embedding was computed at
    decoder_cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Decoder parts computed from ``embedding`` alone (``SamPredictor.set_embedding``): kept with the state,
    so a click after a refined pass (another frame) or on a revisited image reuses them."""


@dataclass
class _Frame:
    """Where a prediction was made: the full image (offset 0) or a crop ``box`` = (x0, y0, x1, y1)."""

    state: SamImageState
    full_shape: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    crop: tuple[int, int, int, int] | None = None


@dataclass
class SamPredState:
    """What ``predict(previous=...)`` reuses: the frame (full image or crop) and the chosen low-res logits."""

    crop: tuple[int, int, int, int] | None
    low_res: np.ndarray  # (1, 256, 256) float32 logits of the chosen mask
    extreme_points: np.ndarray | None
    box: np.ndarray | None


@dataclass
class _Cand:
    mask: np.ndarray  # full image resolution
    iou: float
    low_res: np.ndarray
    variant: str
    score: float = 0.0


class MobileSamSegmenter:
    """MobileSAM with the extreme-points recipe (see the module doc for the flags)."""

    name = "mobilesam"

    def __init__(
        self,
        model: Any,
        *,
        variants: Sequence[str] = ("box+points", "box"),
        full_variants: Sequence[str] = ("box+points",),
        select: SelectMode = "combined",
        zoom: ZoomMode = "auto",
        zoom_below: float = 0.3,
        zoom_context: float = 0.4,
        remove_blobs: bool = False,
        fill_holes: bool = False,
        refine: RefineMode = "upstream",
        refine_box: bool = True,
        local_below: float = 0.7,
        consistency_tolerance: float = 5.0,
        box_weight: float = 1.0,
        near_weight: float = 0.0,
        inward_weight: float = 0.0,
        cache_size: int = 8,
        zoom_size: int = 1024,
        smooth_logits: float = 0.0,
        boundary: Literal["off", "guided"] = "guided",
        boundary_radius: int = 4,
        boundary_eps: float = 1e-3,
        boundary_band: int = 3,
        boundary_temperature: float = 1.0,
        precision: str | None = None,
        threads: int | None = None,
        encode_area: str = "full",
        zoom_area: str = "full",
        zoom_scale: float = 0.0,
        decoder_precision: str | None = None,
    ) -> None:
        from gt_widget.segment.mobilesam import SamPredictor
        from gt_widget.segment.mobilesam.runtime import CoreMonitor, choose_decoder_precision, choose_precision

        self._predictor_cls = SamPredictor
        self.model = model
        try:
            self.precision = choose_precision(precision)
        except ValueError as exc:
            raise PromptError(str(exc)) from None
        """Encoder precision in use, ``"fp32"`` or ``"bf16"`` (auto: bf16 where the CPU has it natively)."""
        try:
            self.decoder_precision = choose_decoder_precision(decoder_precision, self.precision)
        except ValueError as exc:
            raise PromptError(str(exc)) from None
        """Mask decoder precision: ``decoder_precision`` / ``$GT_WIDGET_DECODER_PRECISION``, else
        ``runtime.DEFAULT_DECODER_PRECISION``; ``"auto"`` follows ``precision``."""
        if int(zoom_size) % 16 or not 256 <= int(zoom_size) <= 1024:
            raise PromptError(f"zoom_size must be a multiple of 16 in [256, 1024], got {zoom_size}")
        self.zoom_size = int(zoom_size)
        from gt_widget.segment.mobilesam.predictor import ENCODE_AREAS

        if encode_area not in ENCODE_AREAS:
            raise PromptError(f"encode_area must be one of {ENCODE_AREAS}, got {encode_area!r}")
        self.encode_area = encode_area
        """Full-image encodes of the padded square (``"full"``) or of the image's own area only (``"real"``)."""
        if zoom_area not in ENCODE_AREAS:
            raise PromptError(f"zoom_area must be one of {ENCODE_AREAS}, got {zoom_area!r}")
        self.zoom_area = zoom_area
        """``encode_area`` of the zoomed crop encodes (``"real"``: a non-square crop costs only its own area)."""
        if not 0.0 <= float(zoom_scale) <= 8.0:
            raise PromptError(f"zoom_scale must be 0 (always zoom_size) or a factor in (0, 8], got {zoom_scale}")
        self.zoom_scale = float(zoom_scale)
        """0: crops are encoded at ``zoom_size``; k > 0: at k x the crop's long side, rounded up to a multiple
        of 128 within [256, zoom_size] (few distinct sizes, so few cached blank embeddings)."""
        self.smooth_logits = max(0.0, float(smooth_logits))
        """Gaussian sigma (low-res px) applied to the logits before thresholding the shown masks (0: off)."""
        if boundary not in ("off", "guided"):
            raise PromptError(f"unknown boundary mode {boundary!r}: use 'off' or 'guided'")
        self.boundary = boundary
        """``"guided"``: the chosen mask's boundary is re-decided at full resolution (segment/boundary.py)."""
        self.boundary_settings = BoundarySettings(
            radius=int(boundary_radius),
            eps=float(boundary_eps),
            band=int(boundary_band),
            temperature=float(boundary_temperature),
        )
        self.threads = None if threads is None else max(1, int(threads))
        """Torch threads per call; None sizes them to the cores other processes leave free."""
        self._cores = CoreMonitor()
        self._gate = _model_gate(model)
        self._decoders: dict[int, Any] = {1024: SamPredictor(model, decoder_precision=self.decoder_precision)}
        self._predictor = self._decoders[1024]
        self.variants = tuple(variants)
        self.full_variants = tuple(full_variants)
        for v in (*self.variants, *self.full_variants):
            if v not in ("box+points", "box", "points"):
                raise PromptError(f"unknown prompt variant {v!r}: use 'box+points', 'box' or 'points'")
        self.select = select
        self.zoom = zoom
        self.zoom_below = float(zoom_below)
        self.zoom_context = float(zoom_context)
        self.remove_blobs = bool(remove_blobs)
        self.fill_holes = bool(fill_holes)
        if refine not in ("upstream", "guarded", "ensemble", "nologits"):
            raise PromptError(f"unknown refine mode {refine!r}: use 'upstream', 'guarded', 'ensemble' or 'nologits'")
        self.refine = refine
        self.refine_box = bool(refine_box)
        self.local_below = float(local_below)
        self.consistency_tolerance = float(consistency_tolerance)
        self.box_weight = float(box_weight)
        self.near_weight = float(near_weight)
        self.inward_weight = float(inward_weight)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, SamImageState] = OrderedDict()
        self._state: SamImageState | None = None
        self._frame_key: tuple[str, tuple[int, int, int, int] | None, int] | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_weights(cls, weights: Path | str | None = None, **kwargs: Any) -> MobileSamSegmenter:
        """Load the checkpoint (``weights`` path, else the verified cache / download) and build a segmenter."""
        from gt_widget.segment.mobilesam import load_mobilesam
        from gt_widget.segment.weights import resolve_weights

        path = resolve_weights(Path(weights) if weights is not None else None)
        return cls(load_mobilesam(path), **kwargs)

    # ------------------------------------------------------------------ per-image state
    def _encode(
        self, rgb: np.ndarray, key: str, image_size: int = 1024, encode_area: str | None = None
    ) -> SamImageState:
        """Run the encoder (never under ``self._lock``; a private predictor is safe beside a predict);
        ``encode_area`` None: the segmenter's ``encode_area``."""
        area = self.encode_area if encode_area is None else encode_area
        predictor = self._predictor_cls(self.model, image_size=image_size, precision=self.precision, encode_area=area)
        with self._torch_threads():
            predictor.set_image(rgb)
        return SamImageState(
            image=rgb,
            embedding=predictor.get_image_embedding(),
            original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            input_size=tuple(int(v) for v in predictor.input_size),  # type: ignore[arg-type]
            key=key,
            image_size=image_size,
        )

    def _prime_decoder(self, state: SamImageState) -> None:
        """Fill ``state.decoder_cache`` before the state is shared (a private predictor, as in ``_encode``)."""
        predictor = self._predictor_cls(
            self.model, image_size=state.image_size, decoder_precision=self.decoder_precision
        )
        with self._torch_threads():
            predictor.set_embedding(state.embedding, state.original_size, state.input_size, state.decoder_cache)
            predictor.prime_decoder()

    @contextmanager
    def _torch_threads(self) -> Iterator[None]:
        """Size this thread's torch intra-op threads to ``threads`` or to the cores free right now
        (torch's OpenMP thread count is per calling thread, so a background encode and an interactive
        predict each get their own)."""
        import torch

        want = self.threads or self._cores.free_cores()
        before = torch.get_num_threads()
        if want != before:
            torch.set_num_threads(want)
        try:
            yield
        finally:
            if want != before:
                torch.set_num_threads(before)

    @property
    def free_cores(self) -> int:
        """Cores the segmenter would use for a call now (``threads`` or the cores others leave free)."""
        return self.threads or self._cores.free_cores()

    def prepare(self, image: ImageSource, *, background: bool = True, cache: bool = True) -> SamImageState:
        """Encode ``image`` without changing the current image (expensive; thread-safe, for prefetching).

        ``background`` (default): the encoder run steps aside while an interactive ``predict`` is in
        flight. Batch workers pass ``background=False`` (all their work is throughput work, none should
        wait) and ``cache=False`` (each image is seen once: the state, image included, is neither looked up
        nor kept, so a worker never waits for the lock another worker's decoding holds)."""
        rgb = load_image(image)
        key = _image_key(rgb)
        if cache:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit
        with self._gate.background() if background else nullcontext():  # yields to interactive predicts
            state = self._encode(rgb, key)
            if cache:  # an image a user will click on: its first click skips the decoder's image-only part
                self._prime_decoder(state)
        if not cache:
            return state
        with self._lock:
            self._cache[key] = state
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return state

    def set_image(self, image: ImageSource) -> None:
        """Load and encode ``image`` (expensive, ~1.5 s on 2 CPU cores; instant for a cached image)."""
        self.set_state(self.prepare(image))

    def get_state(self) -> SamImageState | None:
        """The current image's state (embedding included), to restore later with ``set_state``."""
        return self._state

    def set_state(self, state: SamImageState) -> None:
        """Make ``state`` (from ``prepare`` / ``get_state``) the current image; cheap."""
        if not isinstance(state, SamImageState):
            raise PromptError(f"set_state needs a state from a MobileSAM segmenter, got {type(state).__name__}")
        with self._lock:
            self._state = state
            self._frame_key = None

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None before ``set_image``."""
        st = self._state
        return None if st is None else st.original_size

    def _crop_state(self, st: SamImageState, crop: tuple[int, int, int, int]) -> SamImageState:
        """The crop's embedding, encoded outside the lock on a miss (only the cache insert is locked)."""
        with self._lock:
            cached = st.crops.get(crop)
            if cached is not None:
                st.crops.move_to_end(crop)
                return cached
        x0, y0, x1, y1 = crop
        size = self.crop_encode_size(max(x1 - x0, y1 - y0))
        rgb = np.ascontiguousarray(st.image[y0:y1, x0:x1])
        enc = self._encode(rgb, f"{st.key}/{crop}", size, self.zoom_area)
        with self._lock:
            cached = st.crops.setdefault(crop, enc)
            st.crops.move_to_end(crop)
            while len(st.crops) > 4:
                st.crops.popitem(last=False)
        return cached

    def crop_encode_size(self, side: int) -> int:
        """Encoder input side for a crop whose long side is ``side`` px (see ``zoom_scale``)."""
        if self.zoom_scale <= 0:
            return self.zoom_size
        want = int(np.ceil(self.zoom_scale * side / 128.0)) * 128
        return int(min(self.zoom_size, max(256, want)))

    def _use_frame(self, st: SamImageState, crop: tuple[int, int, int, int] | None) -> _Frame:
        """Point a decoder at the full image or at a crop of it (whose embedding ``_crop_state`` made);
        called under ``self._lock``."""
        frame_state = st if crop is None else st.crops.get(crop) or self._crop_state(st, crop)
        offset = (0, 0) if crop is None else (crop[0], crop[1])
        size = frame_state.image_size
        decoder = self._decoders.get(size)
        if decoder is None:
            decoder = self._decoders[size] = self._predictor_cls(
                self.model, image_size=size, decoder_precision=self.decoder_precision
            )
        key = (st.key, crop, size)
        if self._predictor is not decoder or self._frame_key != key:
            decoder.set_embedding(
                frame_state.embedding, frame_state.original_size, frame_state.input_size, frame_state.decoder_cache
            )
            self._predictor = decoder
            self._frame_key = key
        return _Frame(frame_state, st.original_size, offset, crop)

    def needs_zoom(self, extreme_points: Sequence[Sequence[float]]) -> bool:
        """Would ``predict(extreme_points=...)`` run a zoomed pass that is not encoded yet (a second encoder
        run)? Interactive callers then show ``predict(..., zoom="off")`` first (``predict_staged`` does)."""
        with self._lock:
            st = self._state
            if st is None:
                return False
            pts = validate_extreme_points(extreme_points, st.original_size)
            crop = self._choose_crop(box_from_points(pts), st.original_size, np.zeros((0, 2)), None, self.zoom)
            return crop is not None and crop not in st.crops

    def predict_staged(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
    ) -> StagedPrediction:
        """The full-image answer now; where a zoomed crop pass is still to be encoded, ``refine`` runs it
        (see ``StagedSegmenter`` in gt_widget.segment.base).

        ``refine`` may run on a background thread: its encoder run holds no lock (only the crop cache
        insert and the ~40 ms decoding do) and steps aside between encoder blocks while an interactive
        ``predict`` is in flight. It answers for the image current when ``predict_staged`` was called,
        even if the caller has switched images since."""
        kwargs: dict[str, Any] = {"extreme_points": extreme_points, "clicks": clicks, "previous": previous, "box": box}
        if extreme_points is None or clicks or previous is not None or not self.needs_zoom(extreme_points):
            return StagedPrediction(self.predict(**kwargs))
        st = self._state
        assert st is not None  # needs_zoom was True
        first = self.predict(**kwargs, zoom="off")

        def refine() -> Prediction:
            crop = self._choose_crop(
                box_from_points(validate_extreme_points(extreme_points, st.original_size)),
                st.original_size,
                np.zeros((0, 2)),
                None,
                self.zoom,
            )
            if crop is not None:
                with self._gate.background():
                    self._crop_state(st, crop)
            return self._predict_on(st, **kwargs, zoom=None)

        return StagedPrediction(first, refine)

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
        zoom: ZoomMode | None = None,
    ) -> Prediction:
        """Segment from 4 extreme points, a box, or clicks; refine with clicks and ``previous``.

        ``zoom`` overrides the constructor's zoom mode for this call (the widget asks ``zoom="off"`` for
        an instant first answer, then the zoomed one; see ``needs_zoom``). An interactive request:
        background encoder runs (``prepare``, a staged ``refine``) pause while it runs.
        """
        st = self._state
        if st is None:
            raise PromptError("call set_image(image) before predict(): the segmenter has no image yet")
        return self._predict_on(st, extreme_points, clicks, previous, box, zoom)

    def predict_on(
        self,
        state: SamImageState,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
        zoom: ZoomMode | None = None,
    ) -> Prediction:
        """``predict`` on the image of ``state`` (from ``prepare``) instead of the current one: several
        threads may each segment their own image at once (batch pre-labeling); the current image is
        left alone."""
        if not isinstance(state, SamImageState):
            raise PromptError(f"predict_on needs a state from a MobileSAM segmenter, got {type(state).__name__}")
        return self._predict_on(state, extreme_points, clicks, previous, box, zoom)

    def _predict_on(
        self,
        st: SamImageState,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
        zoom: ZoomMode | None = None,
    ) -> Prediction:
        shape = st.original_size
        pts = validate_extreme_points(extreme_points, shape) if extreme_points is not None else None
        click_xy, click_pos = validate_clicks(clicks, shape)
        prompt_box = validate_box(box, shape) if box is not None else None
        if pts is not None:
            prompt_box = box_from_points(pts)
        require_object_prompt(prompt_box is not None, click_pos, previous is not None)
        prev_state = previous.state if previous is not None and isinstance(previous.state, SamPredState) else None
        if previous is not None and np.asarray(previous.mask).shape != shape:
            raise PromptError(
                "previous prediction is for another image (its mask has a different size); "
                "pass previous=None after changing images"
            )
        crop = self._choose_crop(prompt_box, shape, click_xy, prev_state, zoom or self.zoom)
        with self._gate.interactive(), self._torch_threads():
            if crop is not None:
                self._crop_state(st, crop)  # a foreground encode when not cached yet (outside the lock)
            with self._lock:
                frame = self._use_frame(st, crop)
                if len(click_xy) == 0:
                    cands = self._first_pass(frame, pts, prompt_box)
                else:
                    cands = self._refine(frame, pts, prompt_box, click_xy, click_pos, prev_state)
            if self.local_below > 0 and previous is not None and len(click_xy):
                prev_mask = np.asarray(previous.mask, bool)
                for c in cands:
                    c.mask = local_edit(prev_mask, c.mask, click_xy[-1], self.local_below)
            pred = self._finish(cands, pts, prompt_box, click_xy, click_pos, crop)
            if self.boundary == "guided":
                pred = self._refine_boundary(pred, frame)
            return pred

    def _refine_boundary(self, pred: Prediction, frame: _Frame) -> Prediction:
        """``pred`` with its chosen mask's boundary re-decided at full resolution in its frame (the crop or
        the full image) by ``boundary.refine_boundary``; the low-res logits kept for clicks stay the
        model's."""
        x0, y0 = frame.offset
        logits = frame_logits(frame.state, pred.state.low_res)
        h, w = logits.shape
        full = np.array(pred.mask, bool, copy=True)
        full[y0 : y0 + h, x0 : x0 + w] = refine_boundary(
            full[y0 : y0 + h, x0 : x0 + w], logits, frame.state.image, self.boundary_settings
        )
        chosen = Candidate(mask=full, score=pred.score)
        rest = [c for c in pred.candidates if not np.array_equal(c.mask, pred.mask)]
        return Prediction(mask=full, score=pred.score, candidates=[chosen, *rest], state=pred.state)

    def boundary_inputs(self, pred: Prediction) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
        """What the boundary refinement of ``pred`` (made on the current image) works on: the frame's
        offset (x0, y0) in the image, the chosen mask's upsampled logits (h, w) float32 in that frame and
        the frame's RGB pixels (h, w, 3). For benchmarks that sweep ``boundary.refine_boundary``."""
        st = self._state
        if st is None or not isinstance(pred.state, SamPredState):
            raise PromptError("boundary_inputs needs a MobileSAM prediction on the current image")
        crop = pred.state.crop
        fs = st if crop is None else self._crop_state(st, crop)
        offset = (0, 0) if crop is None else (crop[0], crop[1])
        return offset, frame_logits(fs, pred.state.low_res), fs.image

    def _choose_crop(
        self,
        prompt_box: np.ndarray | None,
        shape: tuple[int, int],
        click_xy: np.ndarray,
        prev_state: SamPredState | None,
        zoom: ZoomMode,
    ) -> tuple[int, int, int, int] | None:
        if prev_state is not None:
            crop = prev_state.crop
            if crop is None or len(click_xy) == 0:
                return crop
            x0, y0, x1, y1 = crop
            inside = (click_xy[:, 0] >= x0) & (click_xy[:, 0] < x1) & (click_xy[:, 1] >= y0) & (click_xy[:, 1] < y1)
            return crop if bool(inside.all()) else None
        if zoom == "off" or prompt_box is None:
            return None
        h, w = shape
        bw, bh = prompt_box[2] - prompt_box[0] + 1, prompt_box[3] - prompt_box[1] + 1
        if zoom == "auto" and bw * bh >= self.zoom_below * h * w:
            return None
        return zoom_crop(prompt_box, shape, self.zoom_context)

    def _run(
        self,
        frame: _Frame,
        variant: str,
        coords: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> list[_Cand]:
        ox, oy = frame.offset
        shift = np.array([ox, oy], np.float64)
        local_coords = None if coords is None or len(coords) == 0 else (coords - shift).astype(np.float32)
        local_labels = None if local_coords is None or labels is None else labels.astype(np.int64)
        local_box = None if box is None else (box - np.concatenate([shift, shift])).astype(np.float32)
        masks, ious, low_res = self._predictor.predict(
            point_coords=local_coords,
            point_labels=local_labels,
            box=local_box,
            mask_input=mask_input,
            multimask_output=multimask,
            return_logits=False,
            smooth=self.smooth_logits,
        )
        masks = np.asarray(masks, bool)
        full_shape = frame.full_shape
        out = []
        for i in range(masks.shape[0]):
            m = masks[i]
            if (ox, oy) != (0, 0) or m.shape != full_shape:
                full = np.zeros(full_shape, bool)
                full[oy : oy + m.shape[0], ox : ox + m.shape[1]] = m
                m = full
            iou = min(max(float(np.asarray(ious)[i]), 0.0), 1.0)  # the IoU head can overshoot 1 slightly
            out.append(_Cand(m, iou, np.asarray(low_res)[i : i + 1], variant))
        return out

    def _first_pass(self, frame: _Frame, pts: np.ndarray | None, box: np.ndarray | None) -> list[_Cand]:
        cands: list[_Cand] = []
        for variant in self.variants if frame.crop is not None else self.full_variants:
            if pts is None and variant != "box":
                continue
            if variant == "box+points":
                assert pts is not None
                cands += self._run(frame, variant, pts, np.ones(len(pts)), box, None, True)
            elif variant == "box":
                cands += self._run(frame, variant, None, None, box, None, True)
            else:
                assert pts is not None
                cands += self._run(frame, variant, pts, np.ones(len(pts)), None, None, True)
        if not cands:  # a box with a points-only recipe: the box alone is all we have
            cands = self._run(frame, "box", None, None, box, None, True)
        return cands

    def _refine(
        self,
        frame: _Frame,
        pts: np.ndarray | None,
        box: np.ndarray | None,
        click_xy: np.ndarray,
        click_pos: np.ndarray,
        prev: SamPredState | None,
    ) -> list[_Cand]:
        coords = click_xy if pts is None else np.concatenate([pts, click_xy])
        labels = click_pos.astype(np.int64) if pts is None else np.concatenate([np.ones(len(pts)), click_pos])
        # logits live in their frame's coordinates: reuse them only in the same frame (full image or crop)
        same_frame = prev is not None and prev.crop == frame.crop
        prev_logits = prev.low_res if prev is not None and same_frame and self.refine != "nologits" else None
        rbox = box if self.refine_box else None
        cands = self._run(frame, "refine", coords, labels, rbox, prev_logits, False)
        if self.refine in ("upstream", "nologits"):
            return cands
        if self.refine == "guarded" and _clicks_satisfied(cands[0].mask, click_xy, click_pos) == len(click_xy):
            return cands
        # the model ignored a click (or we always ensemble): also ask without the previous logits, 3 masks
        cands += self._run(frame, "refine-fresh", coords, labels, rbox, None, True)
        return cands

    def _finish(
        self,
        cands: list[_Cand],
        pts: np.ndarray | None,
        box: np.ndarray | None,
        click_xy: np.ndarray,
        click_pos: np.ndarray,
        crop: tuple[int, int, int, int] | None,
    ) -> Prediction:
        seeds = [p for p in (pts, click_xy[click_pos] if len(click_xy) else None) if p is not None and len(p)]
        for c in cands:
            if self.remove_blobs and seeds:
                c.mask = keep_components_near(c.mask, np.concatenate(seeds), radius=self.consistency_tolerance + 3)
            if self.fill_holes:
                c.mask = fill_small_holes(c.mask)
            c.score = self._score(c, pts, box)
        if len(click_xy):
            # each ignored click costs a share of the score; a mask that honours every click but is
            # inconsistent with the extreme points (a tiny blob around one click) still loses
            n = len(click_xy)
            for c in cands:
                c.score *= (1.0 + _clicks_satisfied(c.mask, click_xy, click_pos)) / (1.0 + n)
        order = sorted(range(len(cands)), key=lambda i: -cands[i].score)
        ranked = [cands[i] for i in order]
        best = ranked[0]
        unique: list[Candidate] = []
        for c in ranked:
            if all(not np.array_equal(c.mask, u.mask) for u in unique):
                unique.append(Candidate(mask=c.mask, score=c.score))
        return Prediction(
            mask=best.mask,
            score=best.score,
            candidates=unique,
            state=SamPredState(crop=crop, low_res=best.low_res, extreme_points=pts, box=box),
        )

    def _score(self, c: _Cand, pts: np.ndarray | None, box: np.ndarray | None) -> float:
        """Predicted IoU times agreement with the prompt (``select`` picks the agreement measure).

        ``combined``: IoU x box_iou^box_weight x near^near_weight x inward^inward_weight, where box_iou
        compares the mask's bounding box with the points' box, near is the mean soft closeness of the
        extreme points to the mask and inward the mean fraction of the inward rays on the mask (see
        ``recipes``); the weights were fitted on half of DAVIS-345 and GrabCut-50 (benchmarks/README.md).
        """
        if self.select == "iou" or box is None:
            return c.iou
        mb = mask_bbox(c.mask)
        fill = 0.0 if mb is None else box_iou(mb, box)
        if self.select == "box" or pts is None:
            return c.iou * fill  # the mask should fill the prompt's box edge to edge
        if self.select == "consistency":
            return extreme_consistency(c.mask, pts, self.consistency_tolerance)
        tol = self.consistency_tolerance
        score = c.iou * fill**self.box_weight
        if self.near_weight:
            near = np.exp(-np.maximum(distance_to_mask(c.mask, pts) - tol, 0.0) / tol)
            score *= float(near.mean()) ** self.near_weight
        if self.inward_weight:
            ordered = order_extreme_points(pts)
            side = max(box[2] - box[0], box[3] - box[1], 1.0)
            score *= float(inward_cover(c.mask, ordered, max(2.5 * tol, 0.05 * side)).mean()) ** self.inward_weight
        return score


def zoom_crop(box: np.ndarray, shape: tuple[int, int], context: float) -> tuple[int, int, int, int]:
    """Crop (x0, y0, x1, y1), end-exclusive, around ``box`` with ``context`` x its size on each side.

    At least 32 px of context and a 64 px square minimum, so the model sees the object's surroundings.
    """
    h, w = shape
    bw, bh = box[2] - box[0] + 1, box[3] - box[1] + 1
    side = max(bw, bh)
    mx = max(context * side, 32.0, (64 - bw) / 2)
    my = max(context * side, 32.0, (64 - bh) / 2)
    g = 16  # snap outwards to a 16 px grid: points moved by a few pixels reuse the cached crop embedding
    x0, y0 = max(int(np.floor((box[0] - mx) / g)) * g, 0), max(int(np.floor((box[1] - my) / g)) * g, 0)
    x1 = min(int(np.ceil((box[2] + mx + 1) / g)) * g, w)
    y1 = min(int(np.ceil((box[3] + my + 1) / g)) * g, h)
    return x0, y0, x1, y1


def frame_logits(state: SamImageState, low_res: np.ndarray) -> np.ndarray:
    """(1, 256, 256) low-res logits -> float32 (h, w) logits at the frame's (``state``'s) pixel size,
    upsampled exactly as the masks are (``transforms.upscale_logits``)."""
    import torch

    from gt_widget.segment.mobilesam.transforms import upscale_logits

    low = torch.from_numpy(np.asarray(low_res, np.float32).reshape(1, *np.shape(low_res)[-2:]))
    out = upscale_logits(low, state.input_size, state.original_size, model_size=state.image_size, return_logits=True)
    return np.asarray(out[0], np.float32)


def local_edit(previous: np.ndarray, new: np.ndarray, click: np.ndarray, below: float) -> np.ndarray:
    """Keep a corrective click's effect local when the model redrew the whole mask.

    If ``new`` overlaps ``previous`` with IoU under ``below``, only the connected part of their difference
    that holds the click (x, y) is applied to ``previous``; if the click is not in the difference (the
    model ignored it), ``new`` is returned unchanged and the click guard deals with it.
    """
    union = np.count_nonzero(previous | new)
    if union == 0 or np.count_nonzero(previous & new) / union >= below:
        return new
    diff = previous ^ new
    h, w = diff.shape
    x, y = min(max(round(float(click[0])), 0), w - 1), min(max(round(float(click[1])), 0), h - 1)
    if not diff[y, x]:
        return new
    _, labels = cv2.connectedComponents(diff.astype(np.uint8), connectivity=8)
    return np.asarray(previous ^ (labels == labels[y, x]))


def _clicks_satisfied(mask: np.ndarray, xy: np.ndarray, positive: np.ndarray) -> int:
    h, w = mask.shape
    xi = np.clip(np.rint(xy[:, 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(xy[:, 1]).astype(np.intp), 0, h - 1)
    return int(np.count_nonzero(mask[yi, xi] == positive))


def _model_gate(model: Any) -> Any:
    """The model's ``InteractiveGate`` (one per model: the CPU it competes for is shared by every
    segmenter on it), created on first use with a pause point before every encoder block and the neck
    (~15 per encoder run) so background encoder runs yield to interactive requests."""
    from gt_widget.segment.mobilesam.runtime import InteractiveGate

    gate = getattr(model, "_gtw_gate", None)
    if isinstance(gate, InteractiveGate):
        return gate
    gate = InteractiveGate()
    encoder = model.image_encoder
    for m in [blk for stage in encoder.layers for blk in stage.blocks] + [encoder.neck]:
        m.register_forward_pre_hook(lambda _m, _inp: gate.pause_point())
    object.__setattr__(model, "_gtw_gate", gate)
    return gate


def _image_key(rgb: np.ndarray) -> str:
    digest = hashlib.blake2b(rgb.tobytes(), digest_size=16)
    digest.update(str(rgb.shape).encode())
    return digest.hexdigest()
