"""The disk cache of the blank (all-padding) embedding behind ``encode_area="real"`` (``blank_cache``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, blank_cache, load_mobilesam
from gt_widget.segment.mobilesam.predictor import _BLANK

pytestmark = pytest.mark.weights

SIZE = 256  # a 256 x 256 blank encode is ~1/16 of the 1024 one: the tests stay quick


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty ``$GT_WIDGET_CACHE``."""
    monkeypatch.setenv("GT_WIDGET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def blank_runs(model: MobileSam) -> Iterator[list[int]]:
    """Counts the encoder runs on the all-padding input; starts with no blank in memory."""
    runs: list[int] = []

    def hook(_m: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if not inputs[0].any():
            runs.append(int(inputs[0].shape[-1]))

    handle = model.image_encoder.register_forward_pre_hook(hook)
    _BLANK.pop(model, None)
    yield runs
    handle.remove()
    _BLANK.pop(model, None)


def _blank(model: MobileSam, size: int = SIZE, precision: str = "fp32", forget: bool = True) -> torch.Tensor:
    """The predictor's blank, as a new process would see it (``forget``: nothing in memory first)."""
    if forget:
        _BLANK.pop(model, None)
    return SamPredictor(model, image_size=size, precision=precision, encode_area="real")._blank()


def _path(model: MobileSam, size: int = SIZE, precision: str = "fp32") -> Path:
    key = blank_cache.blank_key(model, size, precision)
    assert key is not None
    return blank_cache.blank_path(key)


def test_hit_skips_the_encoder_and_gives_the_same_values(model: MobileSam, cache: Path, blank_runs: list[int]) -> None:
    computed = _blank(model)
    assert blank_runs == [SIZE]
    assert _path(model).parent == cache / "blank" and _path(model).is_file()
    loaded = _blank(model)
    assert blank_runs == [SIZE]  # no second encoder run
    assert loaded.dtype == torch.float32 and loaded.shape == (1, 256, SIZE // 16, SIZE // 16)
    assert loaded.is_contiguous() and torch.equal(loaded, computed)


def test_embeddings_and_masks_are_the_same_cold_and_warm(model: MobileSam, cache: Path, blank_runs: list[int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)  # 16:9: 144 x 256 real, the rest blank
    out = []
    for _ in range(2):  # cold (computes and stores), then warm (loads)
        _BLANK.pop(model, None)
        p = SamPredictor(model, image_size=SIZE, encode_area="real")
        p.set_image(image)
        masks, iou, low = p.predict(box=np.array([20, 10, 120, 80]))
        out.append((p.get_image_embedding(), masks, iou, low))
    assert blank_runs == [SIZE]
    (e0, m0, i0, l0), (e1, m1, i1, l1) = out
    assert torch.equal(e0, e1)
    assert np.array_equal(m0, m1) and np.array_equal(i0, i1) and np.array_equal(l0, l1)


def _truncate(path: Path, model: MobileSam) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _garbage(path: Path, model: MobileSam) -> None:
    path.write_bytes(b"not a torch file")


def _nan(path: Path, model: MobileSam) -> None:
    data = torch.load(path, weights_only=True)
    data["embedding"][0, 0, 0, 0] = float("nan")
    torch.save(data, path)


def _shape(path: Path, model: MobileSam) -> None:
    data = torch.load(path, weights_only=True)
    data["embedding"] = data["embedding"][:, :, :-1]
    torch.save(data, path)


def _dtype(path: Path, model: MobileSam) -> None:
    data = torch.load(path, weights_only=True)
    data["embedding"] = data["embedding"].double()
    torch.save(data, path)


def _foreign(path: Path, model: MobileSam) -> None:
    """Another key's file at this name (e.g. a copied cache)."""
    data = torch.load(path, weights_only=True)
    data["key"] = data["key"].replace('"precision": "fp32"', '"precision": "bf16"')
    torch.save(data, path)


def _not_a_dict(path: Path, model: MobileSam) -> None:
    torch.save(torch.load(path, weights_only=True)["embedding"], path)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _nan, _shape, _dtype, _foreign, _not_a_dict])
def test_a_damaged_or_foreign_file_is_recomputed_and_replaced(
    model: MobileSam, cache: Path, blank_runs: list[int], damage: object
) -> None:
    computed = _blank(model)
    path = _path(model)
    assert callable(damage)
    damage(path, model)
    key = blank_cache.blank_key(model, SIZE, "fp32")
    assert key is not None and blank_cache.load_blank(key, SIZE) is None
    again = _blank(model)
    assert blank_runs == [SIZE, SIZE]  # recomputed, not loaded
    assert torch.equal(again, computed)
    stored = blank_cache.load_blank(key, SIZE)  # and the file is whole again
    assert stored is not None and torch.equal(stored, computed)


@pytest.mark.parametrize(("size", "precision"), [(SIZE, "bf16"), (2 * SIZE, "fp32")])
def test_another_precision_or_size_misses(
    model: MobileSam, cache: Path, blank_runs: list[int], size: int, precision: str
) -> None:
    _blank(model)
    assert _path(model, size, precision) != _path(model)
    _blank(model, size, precision)
    assert blank_runs == [SIZE, size]
    assert sorted(p.name for p in (cache / "blank").iterdir()) == sorted(
        [_path(model).name, _path(model, size, precision).name]
    )


def test_the_key_follows_weights_identity_optimization_and_code(weights_path: Path, model: MobileSam) -> None:
    key = blank_cache.blank_key(model, SIZE, "fp32")
    assert key is not None and blank_cache.BLANK_CODE_VERSION > 0
    assert blank_cache.blank_key(load_mobilesam(weights_path), SIZE, "fp32") == key  # another process, same key
    assert blank_cache.blank_key(load_mobilesam(weights_path, optimize=False), SIZE, "fp32") not in (key, None)
    nhwc_off = load_mobilesam(weights_path).optimize_for_inference(channels_last=False)
    assert blank_cache.blank_key(nhwc_off, SIZE, "fp32") not in (key, None)
    # weights that are not the verified file: no identity, no disk cache
    assert blank_cache.blank_key(load_mobilesam(weights_path, verify=False), SIZE, "fp32") is None
    assert blank_cache.blank_key(MobileSam(), SIZE, "fp32") is None
    reloaded = load_mobilesam(weights_path, optimize=False)
    reloaded.load_state_dict(reloaded.state_dict())  # any load_state_dict: the identity is gone
    assert reloaded.weights_sha256 is None and blank_cache.blank_key(reloaded, SIZE, "fp32") is None


def test_a_model_without_identity_computes_and_writes_nothing(weights_path: Path, cache: Path) -> None:
    unverified = load_mobilesam(weights_path, verify=False)
    first = _blank(unverified)
    assert torch.equal(_blank(unverified, forget=False), first)  # the in-memory cache still works
    assert not (cache / "blank").exists()


def test_an_unwritable_cache_only_costs_the_recompute(
    model: MobileSam, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank_runs: list[int]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder would be")  # mkdir fails even for root
    monkeypatch.setenv("GT_WIDGET_CACHE", str(blocker / "cache"))
    first = _blank(model)
    second = _blank(model)
    assert blank_runs == [SIZE, SIZE] and torch.equal(first, second)
    key = blank_cache.blank_key(model, SIZE, "fp32")
    assert key is not None and not blank_cache.store_blank(key, first)


def test_concurrent_writers_never_expose_a_partial_file(model: MobileSam, cache: Path) -> None:
    """Several processes (here threads) storing the same blank at once while others read it: a reader
    sees a whole, valid file or none, and no temp file is left behind."""
    emb = _blank(model)
    key = blank_cache.blank_key(model, SIZE, "fp32")
    assert key is not None
    blank_cache.blank_path(key).unlink()
    stop = threading.Event()
    seen: list[bool] = []
    stored = threading.Event()

    def write() -> None:
        for _ in range(5):
            assert blank_cache.store_blank(key, emb)
            stored.set()

    def read() -> None:
        while not stop.is_set():
            was_stored = stored.is_set()
            got = blank_cache.load_blank(key, SIZE)
            if was_stored:
                seen.append(got is not None and torch.equal(got, emb))

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(4)]
    for t in (*readers, *writers):
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    for t in readers:
        t.join(60)
    assert seen and all(seen)
    assert [p.name for p in (cache / "blank").iterdir()] == [blank_cache.blank_path(key).name]
