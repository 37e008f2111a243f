"""The Ray engine against a local Ray on 127.0.0.1: same files as the local engine, failures, resume after kill.

Also the local engine's resume after a kill (SIGKILL mid-run, then the same call again), and ``device=``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import GtWidgetError
from gt_widget.segment import load_segmenter, resolve_device
from gt_widget.segment.batch import prelabel
from gt_widget.widget.testing import BoxSegmenter

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'gt_widget[ray]'")

from gt_widget.segment.ray_engine import start_local_ray  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _no_ray(message: str) -> None:
    """Ray 2.x aborts its own start when its agent needs > 15 s (a saturated machine): skip with the reason
    outside CI, fail in CI (whose machine is not shared)."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(f"Ray could not start on this busy machine: {message[:300]}")


_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray on 127.0.0.1 (no dashboard, 2 CPUs), stopped after this module."""
    try:
        start_local_ray(num_cpus=2, num_gpus=0)
    except GtWidgetError as exc:
        _no_ray(str(exc))
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    try:
        yield
    finally:
        ray.shutdown()


def _scenes(folder: Path, count: int, rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    """``count`` noisy images with a bright disc, a broken file, and prompts for all of them."""
    folder.mkdir(parents=True, exist_ok=True)
    prompts: dict[str, list[dict[str, Any]]] = {}
    for k in range(count):
        h, w = 96, 128
        cx, cy = 30 + 7 * k % 60, 40 + 3 * k % 20
        yy, xx = np.mgrid[0:h, 0:w]
        img = rng.normal(100, 20, (h, w, 3))
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= 20**2] = (230, 60, 50)
        name = f"img{k:02d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / name)
        prompts[name] = [
            {"label": "disc", "extreme_points": [[cx, cy - 20], [cx, cy + 20], [cx - 20, cy], [cx + 20, cy]]},
            {"label": "corner", "box": [0, 0, 10 + k, 12]},
        ]
    (folder / "zz_broken.png").write_bytes(b"not a png")
    prompts["zz_broken.png"] = [{"label": "disc", "box": [1, 1, 5, 5]}]
    return prompts


def _normalise(job_dir: Path) -> list[str]:
    """Output manifest lines with the timestamps (creation-date, PNG names) blanked."""
    return [
        _TS.sub("<ts>", line)
        for line in (job_dir / "manifests" / "output" / "output.manifest").read_text().splitlines()
    ]


def _files(job_dir: Path) -> dict[str, bytes]:
    """Every PNG of the job by name (consolidated PNG names lose their timestamp)."""
    return {_TS.sub("<ts>", str(p.relative_to(job_dir))): p.read_bytes() for p in sorted(job_dir.rglob("*.png"))}


def test_ray_run_writes_what_the_local_engine_writes(tmp_path: Path, local_ray: None, rng: np.random.Generator) -> None:
    prompts = _scenes(tmp_path / "images", 5, rng)
    local = prelabel(tmp_path / "images", prompts, tmp_path / "local", segmenter=BoxSegmenter(), progress=False)
    errors: list[str] = []
    remote = prelabel(
        tmp_path / "images",
        prompts,
        tmp_path / "ray",
        segmenter_factory=BoxSegmenter,
        engine="ray",
        workers=2,
        progress=False,
        on_error=lambda key, msg: errors.append(key),
    )
    assert remote.written == local.written and len(remote.written) == 5
    assert [Path(k).name for k, _ in remote.failed] == ["zz_broken.png"] == [Path(e).name for e in errors]
    assert "cannot read image" in remote.failed[0][1]
    assert _normalise(remote.job_dir) == [
        line.replace(str(tmp_path / "local"), str(tmp_path / "ray")) for line in _normalise(local.job_dir)
    ]
    assert _files(remote.job_dir) == _files(local.job_dir)
    assert len(_files(local.job_dir)) == 10  # 5 label maps + 5 consolidated PNGs
    assert json.loads((remote.job_dir / "prelabel-report.json").read_text())["engine"] == "ray"


def test_each_actor_runs_torch_on_its_share_of_the_cpus(
    tmp_path: Path, local_ray: None, rng: np.random.Generator
) -> None:
    """Actors that each ran torch on every core oversubscribed the CPUs (2 workers slower than 1): each actor's
    torch threads, and a segmenter's own ``threads`` knob (MobileSAM's), are its share = cluster CPUs / workers."""
    prompts = _scenes(tmp_path / "images", 4, rng)
    del prompts["zz_broken.png"]
    probe = tmp_path / "probe"
    probe.mkdir()

    class ThreadProbe:
        """BoxSegmenter that writes (pid, torch threads, its ``threads``) at every image, from the actor."""

        def __init__(self) -> None:
            self.inner = BoxSegmenter()
            self.threads: int | None = None  # None = size per call, as MobileSAMSegmenter does

        def set_image(self, image: Any) -> None:
            import torch

            with (probe / f"{os.getpid()}.txt").open("a") as fh:
                fh.write(f"{torch.get_num_threads()} {self.threads}\n")
            self.inner.set_image(image)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    outputs = {}
    for workers, want in ((1, "2 2"), (2, "1 1")):
        for f in probe.iterdir():
            f.unlink()
        out = tmp_path / f"ray{workers}"
        run = prelabel(
            tmp_path / "images",
            prompts,
            out,
            segmenter_factory=ThreadProbe,
            engine="ray",
            workers=workers,
            progress=False,
        )
        assert len(run.written) == 4 and not run.failed
        seen = {f.name: set(f.read_text().split("\n")) - {""} for f in probe.iterdir()}
        assert seen and all(lines == {want} for lines in seen.values()), (workers, seen)
        assert len(seen) <= workers
        outputs[workers] = _files(run.job_dir)
    local = prelabel(tmp_path / "images", prompts, tmp_path / "local", segmenter=BoxSegmenter(), progress=False)
    assert outputs[1] == outputs[2] == _files(local.job_dir)


def test_segment_cli_engine_ray(
    tmp_path: Path, local_ray: None, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    from gt_widget.cli import main

    prompts = _scenes(tmp_path / "images", 3, rng)
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    argv = ["segment", str(tmp_path / "images"), "--prompts", str(tmp_path / "prompts.json"), "--quiet"]
    argv += ["--segmenter", "grabcut", "--engine", "ray", "--workers", "2", "--out", str(tmp_path / "out")]
    assert main(argv) == 1  # the broken image fails; the run goes on
    out = capsys.readouterr().out
    assert "pre-labeled 3 image(s), 1 failed" in out and "zz_broken.png" in out
    assert main(argv) == 1
    assert "3 kept from an earlier run" in capsys.readouterr().out


@pytest.mark.weights
def test_ray_run_with_mobilesam_equals_local(
    tmp_path: Path, local_ray: None, rng: np.random.Generator, weights_path: Path
) -> None:
    import functools

    import torch

    prompts = _scenes(tmp_path / "images", 2, rng)
    factory = functools.partial(load_segmenter, "mobilesam", weights=str(weights_path), device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray gives each 1-CPU actor one thread; same arithmetic, same masks
    try:
        local = prelabel(tmp_path / "images", prompts, tmp_path / "local", segmenter=factory(), progress=False)
    finally:
        torch.set_num_threads(threads)
    remote = prelabel(
        tmp_path / "images",
        prompts,
        tmp_path / "ray",
        segmenter_factory=factory,
        engine="ray",
        workers=1,
        progress=False,
    )
    assert len(local.written) == 2 and remote.written == local.written
    assert _files(remote.job_dir) == _files(local.job_dir)
    disc = np.asarray(Image.open(next((local.job_dir / "masks").glob("00000_*.png")))) == 1
    assert 0.8 * np.pi * 20**2 < disc.sum() < 1.2 * np.pi * 20**2  # the real model found the disc


_KILLED_RUN = textwrap.dedent(
    """
    import json, sys
    from gt_widget.segment.batch import prelabel
    from gt_widget.widget.testing import BoxSegmenter
    folder, out, engine = sys.argv[1:4]
    prompts = json.loads(open(folder + "/prompts.json").read())
    kw = dict(segmenter=BoxSegmenter(delay=0.6), engine=engine, progress=False)
    if engine == "ray":
        kw.update(workers=1, segmenter=None, segmenter_factory=lambda: BoxSegmenter(delay=0.6))
    prelabel(folder, prompts, out, **kw)
    """
)


def _kill_midway(tmp_path: Path, engine: str, prompts: dict[str, Any], wait_for: int) -> Path:
    """Run ``prelabel`` in a child process group, SIGKILL it once ``wait_for`` images are recorded."""
    (tmp_path / "images" / "prompts.json").write_text(json.dumps(prompts))
    state = tmp_path / "out" / "gt-widget-prelabel" / "prelabel-state"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(tmp_path / "images"), str(tmp_path / "out"), engine],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "child.err").open("wb"),
    )
    try:
        deadline = time.monotonic() + 420  # a busy 2-core machine may need several Ray starts
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(state.glob("*.json"))) >= wait_for:
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            err = (tmp_path / "child.err").read_text(errors="replace")
            if "could not start a local Ray" in err:
                _no_ray(err[-400:])
            pytest.fail(f"the run ended before it could be killed: {err[-2000:]}")
        assert len(list(state.glob("*.json"))) >= wait_for, "no image finished in time"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return state


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_killed_run_resumes_without_redoing_finished_images(
    tmp_path: Path, rng: np.random.Generator, engine: str, request: pytest.FixtureRequest
) -> None:
    prompts = _scenes(tmp_path / "images", 8, rng)
    del prompts["zz_broken.png"]
    (tmp_path / "images" / "zz_broken.png").unlink()
    state = _kill_midway(tmp_path, engine, prompts, wait_for=2)
    finished = {p.name: p.stat().st_mtime_ns for p in state.glob("*.json")}
    assert 2 <= len(finished) < 8
    assert not (tmp_path / "out" / "gt-widget-prelabel" / "manifests").exists()  # killed before the end

    if engine == "ray":
        request.getfixturevalue("local_ray")
    counter = BoxSegmenter()
    report = prelabel(
        tmp_path / "images",
        prompts,
        tmp_path / "out",
        segmenter=counter if engine == "local" else None,
        segmenter_factory=None if engine == "local" else BoxSegmenter,
        engine=engine,  # type: ignore[arg-type]
        progress=False,
    )
    assert len(report.written) == 8 and not report.failed
    assert len(report.resumed) == len(finished)
    if engine == "local":
        assert counter.set_image_calls == 8 - len(finished)  # only the unfinished images were segmented
    assert {p.name: p.stat().st_mtime_ns for p in state.glob("*.json") if p.name in finished} == finished
    fresh = prelabel(tmp_path / "images", prompts, tmp_path / "fresh", segmenter=BoxSegmenter(), progress=False)
    assert _files(report.job_dir) == _files(fresh.job_dir)
    assert _normalise(report.job_dir) == [
        line.replace(str(tmp_path / "fresh"), str(tmp_path / "out")) for line in _normalise(fresh.job_dir)
    ]
    # no stray PNGs from the killed run: one label map and one consolidated PNG per image
    assert len(_files(report.job_dir)) == 16


def test_restart_redoes_everything(tmp_path: Path, rng: np.random.Generator) -> None:
    prompts = _scenes(tmp_path / "images", 3, rng)
    prelabel(tmp_path / "images", prompts, tmp_path / "out", segmenter=BoxSegmenter(), progress=False)
    again, retried = BoxSegmenter(), []
    report = prelabel(
        tmp_path / "images",
        prompts,
        tmp_path / "out",
        segmenter=again,
        progress=False,
        on_error=lambda k, m: retried.append(k),
    )
    assert len(report.resumed) == 3 and again.set_image_calls == 0  # nothing written is redone
    assert [Path(k).name for k in retried] == ["zz_broken.png"]  # the failed image is tried again
    changed = {k: [{**v[0], "label": "corner"}] for k, v in prompts.items()}
    redo = BoxSegmenter()
    prelabel(tmp_path / "images", changed, tmp_path / "out", segmenter=redo, progress=False)
    assert redo.set_image_calls == 3  # other prompts: nothing is reused (the broken file never counts)
    fresh = BoxSegmenter()
    prelabel(tmp_path / "images", changed, tmp_path / "out", segmenter=fresh, progress=False, resume=False)
    assert fresh.set_image_calls == 3


@pytest.mark.weights
def test_ray_engine_asks_for_a_factory_when_the_model_cannot_be_shipped(tmp_path: Path, weights_path: Path) -> None:
    seg = load_segmenter("mobilesam", weights=str(weights_path))
    (tmp_path / "i").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "i" / "a.png")
    with pytest.raises(GtWidgetError, match="segmenter_factory"):
        prelabel(
            tmp_path / "i",
            {"a.png": [{"label": "x", "box": [1, 1, 5, 5]}]},
            tmp_path / "o",
            segmenter=seg,
            engine="ray",
        )


def test_device_choice() -> None:
    import torch

    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(GtWidgetError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(GtWidgetError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.weights
def test_mobilesam_on_cuda_matches_cpu(weights_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine: the CUDA path is tested where one is lent")

    image = np.zeros((240, 320, 3), np.uint8)
    image[60:180, 80:240] = (220, 40, 40)
    points = [(160, 60), (160, 179), (80, 120), (239, 120)]
    masks = {}
    for device in ("cpu", "cuda"):
        seg = load_segmenter("mobilesam", weights=str(weights_path), device=device)
        assert seg.model.device.type == device  # type: ignore[attr-defined]
        seg.set_image(image)
        masks[device] = seg.predict(extreme_points=points).mask
    inter = (masks["cpu"] & masks["cuda"]).sum()
    assert inter / (masks["cpu"] | masks["cuda"]).sum() > 0.99
