"""The Ray engine of batch pre-labeling: Ray Data streams the images through a pool of actors, one model each.

Division of work: actors run only the model side (``batch.segment_image``: read image, segment, encode the
two PNGs) and return bytes; this (driver) process writes every file with ``batch.write_image``, so the
output is byte for byte what the local engine writes and the output folder need not be shared with the
cluster. Workers read the images themselves, so image paths must be readable on every node (local paths on
a one-machine cluster, a shared file system on several). ``gt_widget`` must be importable on the workers.

Each actor gets one GPU when the cluster has GPUs (``load_segmenter`` then picks CUDA by itself, since Ray
sets ``CUDA_VISIBLE_DEVICES``) and ``cpus_per_worker`` CPUs otherwise (default: the cluster's CPUs / workers).
Torch threads are pinned in each actor to its share (``torch.set_num_threads`` in the actor's constructor,
and a segmenter's ``threads`` when it has one, e.g. MobileSAM, which otherwise sizes its threads to the cores
it sees free): actors that each ran torch on every core oversubscribed the CPUs, and 2 workers were slower
than 1. A failure on one image comes back as
that image's error; a lost worker leaves its images unrecorded (reported as failed, retried on resume).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gt_widget.errors import GtWidgetError
from gt_widget.segment.base import Segmenter
from gt_widget.segment.batch import ImageItem, PrelabelPlan, SegmentedImage, Task, segment_image, write_image


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise GtWidgetError(
            "the Ray engine needs Ray Data: pip install 'gt_widget[ray]' (or pip install 'ray[data]')"
        ) from None
    return ray


def start_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, attempts: int = 4) -> None:
    """Start a one-machine Ray on 127.0.0.1 in this process (no dashboard); stop it with ``ray.shutdown()``.

    Ray's loopback-only mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the switch Ray reads for laptops;
    set unless already set) keeps the node on 127.0.0.1. Ray's raylet aborts when its Python agent takes
    over 15 s to start (a fixed wait in Ray 2.x, hit when the CPUs are saturated); the agent's imports are
    then in the page cache, so up to ``attempts`` starts are made.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = _import_ray()
    if os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":  # Ray read the variable at import; re-apply it
        constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
        if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
            constants.ENABLE_RAY_CLUSTER = False
    before = _children()
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address="local",
                include_dashboard=False,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                log_to_driver=False,
                configure_logging=False,
            )
            return
        except Exception as exc:
            ray.shutdown()
            _stop_leftovers(before)
            if attempt == attempts:
                raise GtWidgetError(f"could not start a local Ray ({exc}); see /tmp/ray/session_latest/logs") from None


def _children() -> set[int]:
    """Process ids of this process's descendants."""
    import psutil  # a dependency of Ray

    return {c.pid for c in psutil.Process().children(recursive=True)}


def _stop_leftovers(before: set[int]) -> None:
    """Kill the processes a failed ``ray.init`` started (our descendants that did not exist before it):
    Ray leaves its GCS server running when the raylet aborts during start."""
    import psutil

    for pid in sorted(_children() - before):
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def pin_threads(segmenter: Segmenter, threads: int) -> None:
    """Run torch (this process) and ``segmenter`` (its ``threads`` attribute, when it has one) on ``threads``."""
    import torch

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    current = getattr(segmenter, "threads", False)
    if current is None or (isinstance(current, int) and not isinstance(current, bool)):  # MobileSAM's knob only
        segmenter.threads = threads  # type: ignore[attr-defined]


class SegmentActor:
    """Ray Data callable class: builds one segmenter in its constructor (torch pinned to ``threads``), then
    segments batches of rows."""

    def __init__(self, factory: Callable[[], Segmenter], plan: PrelabelPlan, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))  # before the model is built: its first run uses them too
        self.segmenter = factory()
        pin_threads(self.segmenter, threads)
        self.plan = plan

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"pos": [], "label_map_png": [], "consolidated_png": [], "score": [], "error": []}
        for pos, path, ref, objects in zip(
            batch["pos"], batch["path"], batch["source_ref"], batch["objects"], strict=True
        ):
            item = ImageItem(str(ref), Path(str(path)), [])
            try:
                result = segment_image(self.segmenter, self.plan, item, json.loads(str(objects)))
                row = (result.label_map_png, result.consolidated_png, result.score, "")
            except GtWidgetError as exc:
                row = (b"", b"", 0.0, str(exc))
            except Exception as exc:  # reported for this image only; the actor keeps serving
                row = (b"", b"", 0.0, f"{type(exc).__name__}: {exc}")
            out["pos"].append(int(pos))
            out["label_map_png"].append(row[0])
            out["consolidated_png"].append(row[1])
            out["score"].append(float(row[2]))
            out["error"].append(row[3])
        return out


def run_ray(
    plan: PrelabelPlan,
    tasks: Sequence[Task],
    factory: Callable[[], Segmenter],
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    progress: bool = True,
    on_error: Callable[[Task, str], None] | None = None,
) -> int:
    """Segment ``tasks`` on Ray and write each result as it arrives; returns the number of images written.

    ``address``: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); default: join the
    cluster this process is already connected to, else start a local one on 127.0.0.1 (stopped afterwards).
    ``workers``: actors in the pool (default: one per GPU, else one per ``cpus_per_worker`` CPUs (default 1),
    at most one per image). ``cpus_per_worker`` (default: the cluster's CPUs / workers, at least 1) is what each
    actor reserves and its torch thread count (``worker_threads``).
    """
    if not tasks:
        return 0
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        if address is None:
            start_local_ray()
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started_here = True
    try:
        return _run(ray, plan, tasks, factory, workers, cpus_per_worker, progress, on_error)
    finally:
        if started_here:
            ray.shutdown()


def _run(
    ray: Any,
    plan: PrelabelPlan,
    tasks: Sequence[Task],
    factory: Callable[[], Segmenter],
    workers: int | None,
    cpus_per_worker: float | None,
    progress: bool,
    on_error: Callable[[Task, str], None] | None,
) -> int:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if workers is None:
        workers = gpus or max(1, int(cpus // (cpus_per_worker or 1.0)))
    workers = max(1, min(int(workers), len(tasks)))
    share = worker_share(cpus, workers, cpus_per_worker)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    if not progress:  # --quiet: Ray Data's per-dataset INFO lines too
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx.verbose_stats_logs = False
    rows = [
        {
            "pos": n,
            "path": str(item.path),
            "source_ref": item.source_ref,
            "objects": json.dumps(objects),
        }
        for n, (_index, item, objects) in enumerate(tasks)
    ]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        SegmentActor,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"factory": factory, "plan": plan, "threads": worker_threads(share)},
        num_cpus=0 if gpus else share,
        num_gpus=1 if gpus else 0,
        batch_format="numpy",
    )
    written = 0
    for row in ds.iter_rows():
        task = tasks[int(row["pos"])]
        error = str(row["error"])
        if error:
            if on_error is not None:
                on_error(task, error)
            continue
        write_image(
            plan, task, SegmentedImage(bytes(row["label_map_png"]), bytes(row["consolidated_png"]), float(row["score"]))
        )
        written += 1
    return written


def worker_share(cluster_cpus: float, workers: int, cpus_per_worker: float | None = None) -> float:
    """CPUs each actor reserves: ``cpus_per_worker``, else the cluster's CPUs split evenly (at least 1)."""
    if cpus_per_worker is not None:
        return float(cpus_per_worker)
    return max(1.0, float(int(cluster_cpus)) // max(1, workers))


def worker_threads(share: float) -> int:
    """Torch threads of an actor reserving ``share`` CPUs (whole CPUs, at least 1)."""
    return max(1, int(share))
