"""Contract 1: background encoder work (``prepare``, a staged ``refine``) never holds up an interactive
``predict`` on the same MobileSAM segmenter, and the segmenter says which precision it runs.

Timing-free: a hook parks the background encoder run half-way (an event it waits on) and the
interactive ``predict`` must finish while it is parked; the timeouts only turn a deadlock into a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import protocol as P
from gt_widget.errors import PromptError
from gt_widget.segment import load_segmenter
from gt_widget.segment.mobilesam.runtime import CoreMonitor, InteractiveGate, choose_precision, native_bf16
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

GUARD_S = 180.0  # a deadlock guard, not a timing assertion


@pytest.fixture(scope="module")
def seg(weights_path: Path) -> MobileSamSegmenter:
    s = load_segmenter("mobilesam", weights=weights_path)
    assert isinstance(s, MobileSamSegmenter)
    return s


@pytest.fixture(scope="module")
def small_object(grabcut_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A GrabCut object placed in 1/9 of a grey canvas: its box is small, so the staged answer refines."""
    image, gt, _void = next(s for s in P.load_set("grabcut") if s.id == "124080").load()
    h, w = gt.shape
    big = np.full((h * 3, w * 3, 3), 127, np.uint8)
    big[:h, :w] = image
    mask = np.zeros((h * 3, w * 3), bool)
    mask[:h, :w] = gt
    return big, mask


class _Parked:
    """Parks the first encoder run made on ``thread_name`` until ``release`` is set."""

    def __init__(self, seg: MobileSamSegmenter, thread_name: str) -> None:
        self.thread_name = thread_name
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        encoder = seg.model.image_encoder
        self._handles = [
            encoder.layers[2].register_forward_pre_hook(self._pre),  # half-way through the encoder
            encoder.register_forward_hook(self._post),
        ]

    def _mine(self) -> bool:
        return threading.current_thread().name == self.thread_name

    def _pre(self, _m: Any, _inp: Any) -> None:
        if self._mine() and not self.started.is_set():
            self.started.set()
            assert self.release.wait(GUARD_S), "the test never released the parked encoder"

    def _post(self, _m: Any, _inp: Any, _out: Any) -> None:
        if self._mine():
            self.finished.set()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@pytest.fixture
def parked(seg: MobileSamSegmenter) -> Iterator[Callable[[str], _Parked]]:
    made: list[_Parked] = []

    def make(name: str) -> _Parked:
        made.append(_Parked(seg, name))
        return made[-1]

    yield make
    for p in made:
        p.release.set()
        p.remove()


def _run_in_thread(fn: Callable[[], Any], name: str) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t, out


def test_predict_finishes_while_a_refine_encodes(
    seg: MobileSamSegmenter, small_object: tuple[np.ndarray, np.ndarray], parked: Callable[[str], _Parked]
) -> None:
    image, gt = small_object
    pts = P.extreme_points(gt)
    seg.set_image(image)
    staged = seg.predict_staged(extreme_points=pts)
    assert staged.refine is not None, "a small object's staged answer must offer a refined (zoomed) pass"
    park = parked("refine-worker")
    refine_thread, refined = _run_in_thread(staged.refine, "refine-worker")
    assert park.started.wait(GUARD_S), "the refine never started its encoder run"

    # the refine's encoder run is parked half-way; an interactive predict must still complete
    click_thread, clicked = _run_in_thread(lambda: seg.predict(extreme_points=pts, zoom="off"), "click")
    click_thread.join(GUARD_S)
    assert not click_thread.is_alive(), "predict waited behind the refine's encoder run (lock held)"
    assert "error" not in clicked, clicked.get("error")
    assert not park.finished.is_set()  # the click was answered while the encoder run was in progress
    assert np.array_equal(clicked["value"].mask, staged.first.mask)

    park.release.set()
    refine_thread.join(GUARD_S)
    assert "error" not in refined, refined.get("error")
    assert refined["value"].state.crop is not None
    assert P.iou(refined["value"].mask, gt) > 0.85


def test_predict_finishes_while_a_prefetch_encodes(
    seg: MobileSamSegmenter, small_object: tuple[np.ndarray, np.ndarray], parked: Callable[[str], _Parked]
) -> None:
    image, gt = small_object
    seg.set_image(image)
    expected = seg.predict(extreme_points=P.extreme_points(gt), zoom="off")
    other = np.ascontiguousarray(image[::-1])  # new pixels: a real encoder run
    park = parked("prefetch-worker")
    prefetch_thread, prepared = _run_in_thread(lambda: seg.prepare(other), "prefetch-worker")
    assert park.started.wait(GUARD_S)
    click_thread, clicked = _run_in_thread(lambda: seg.predict(extreme_points=P.extreme_points(gt), zoom="off"), "c")
    click_thread.join(GUARD_S)
    assert not click_thread.is_alive(), "predict waited behind a prefetch's encoder run"
    assert not park.finished.is_set()
    assert np.array_equal(clicked["value"].mask, expected.mask)
    park.release.set()
    prefetch_thread.join(GUARD_S)
    assert "error" not in prepared, prepared.get("error")
    assert seg.image_shape == gt.shape  # the prefetch did not switch images
    seg.set_state(prepared["value"])
    assert seg.image_shape == other.shape[:2]


def test_background_work_pauses_while_an_interactive_request_runs() -> None:
    gate = InteractiveGate(max_pause_s=GUARD_S)
    entered, passed = threading.Event(), threading.Event()

    def background() -> None:
        with gate.background():
            entered.set()
            gate.pause_point()
            passed.set()

    with gate.interactive():
        worker = threading.Thread(target=background, daemon=True)
        worker.start()
        assert entered.wait(GUARD_S)
        assert not passed.wait(0.2)  # still parked while the interactive request is in flight
    worker.join(GUARD_S)
    assert passed.is_set() and gate.pauses == 1
    with gate.interactive():
        gate.pause_point()  # outside background(): never waits (a foreground encode cannot block itself)


def test_precision_is_chosen_by_the_machine_and_a_setting_overrides_it(
    seg: MobileSamSegmenter, monkeypatch: pytest.MonkeyPatch, weights_path: Path
) -> None:
    monkeypatch.delenv("GT_WIDGET_PRECISION", raising=False)
    assert seg.precision == ("bf16" if native_bf16() else "fp32")
    assert choose_precision("fp32") == "fp32" and choose_precision("bf16") == "bf16"
    monkeypatch.setenv("GT_WIDGET_PRECISION", "bf16")
    assert choose_precision() == "bf16"
    forced = MobileSamSegmenter(seg.model, precision="fp32")
    assert forced.precision == "fp32"
    with pytest.raises(PromptError, match="precision must be"):
        MobileSamSegmenter(seg.model, precision="int8")


def test_free_cores_stay_within_the_affinity() -> None:
    mon = CoreMonitor(min_window_s=0.0)
    for _ in range(3):
        assert 1 <= mon.free_cores() <= mon.cores
    assert mon.free_cores(cap=1) == 1


def test_a_batch_prepare_does_not_wait_for_another_workers_decoding(seg: MobileSamSegmenter) -> None:
    """Batch workers share one segmenter: one worker's ``prepare(cache=False)`` must encode while another
    holds the segmenter's lock for its decoding (it waited for it before, ~0.1 s an image)."""
    image = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    with seg._lock:  # what another worker's predict_on holds while it decodes
        worker, prepared = _run_in_thread(lambda: seg.prepare(image, background=False, cache=False), "batch-worker")
        worker.join(60)
        finished = not worker.is_alive()
    worker.join(GUARD_S)
    assert finished, "prepare(cache=False) waited for the segmenter's lock"
    assert "error" not in prepared, prepared.get("error")
    assert prepared["value"].original_size == (120, 200)
