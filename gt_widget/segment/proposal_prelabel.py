"""``gt-widget segment --proposals``: automatic proposals of every image of a folder as instance pre-labels.

Kernel side. Each image's proposals (gt_widget.segment.proposals) become instances of one label, painted
largest first so smaller (more specific) objects stay on top; an instance left with no visible pixel is
dropped; at most 255 instances per image (Ground Truth's 8-bit PNG). Written through
gt_widget.segment.prelabel_output (the Ground Truth job layout), with ``prelabel-report.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import Instance
from gt_widget.imageio import load_image
from gt_widget.palette import MAX_LABELS, PALETTE
from gt_widget.segment.base import Segmenter
from gt_widget.segment.proposals import Proposal, ProposalSettings, propose


@dataclass
class ProposalReport:
    """What ``prelabel_proposals`` wrote: the job folder, instances per image, failures."""

    job_dir: Path
    instances: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for people."""
        n = len(self.instances)
        mean = sum(self.instances.values()) / max(n, 1)
        lines = [f"pre-labeled {n} image(s) with {mean:.1f} proposals each, {len(self.failed)} failed: {self.job_dir}"]
        lines += [f"  failed {k}: {m}" for k, m in self.failed]
        return "\n".join(lines)


def instance_map(proposals: list[Proposal], shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """uint8 (H, W) map of ``proposals`` painted largest first (ids 1..n, renumbered without empty ones)."""
    raw = np.zeros(shape, np.uint16)
    order = sorted(proposals, key=lambda p: -p.area)
    for k, p in enumerate(order, start=1):
        raw[p.mask] = k
    present = [v for v in np.unique(raw).tolist() if v != 0][:MAX_LABELS]
    lut = np.zeros(len(order) + 1, np.uint8)
    for new, old in enumerate(present, start=1):
        lut[old] = new
    return lut[raw], len(present)


def prelabel_proposals(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    segmenter: Segmenter,
    label: str = "object",
    points_per_side: int = 16,
    settings: ProposalSettings | None = None,
    job_name: str = "gt-widget-proposals",
    progress: bool = True,
) -> ProposalReport:
    """Proposals of every image of ``source`` (folder or input manifest) as instance pre-labels."""
    from tqdm import tqdm

    from gt_widget.segment.batch import list_images
    from gt_widget.segment.prelabel_output import MachineLabel, write_job

    items = list_images(source)
    report = ProposalReport(Path(out_dir) / job_name)
    results: list[MachineLabel] = []
    for index, item in enumerate(tqdm(items, desc="proposals", unit="img", disable=not progress)):
        try:
            image = load_image(item.path)
            segmenter.set_image(image)
            found = propose(segmenter, points_per_side, settings=settings)
        except GtWidgetError as exc:
            report.failed.append((item.source_ref, str(exc)))
            continue
        imap, n = instance_map(found, image.shape[:2])
        instances = [Instance(label, PALETTE[k]) for k in range(n)]
        score = float(np.mean([p.score for p in found])) if found else 0.0
        results.append(MachineLabel(item.source_ref, index, imap, instances, score, dict(item.extra)))
        report.instances[item.source_ref] = n
    write_job(out_dir, job_name, [label], results)
    summary = {
        "label": label,
        "points_per_side": points_per_side,
        "instances": report.instances,
        "failed": [{"source-ref": k, "error": m} for k, m in report.failed],
    }
    atomic_write_bytes(report.job_dir / "prelabel-report.json", json.dumps(summary, indent=1).encode())
    return report
