"""``gt-widget segment`` and ``gt-widget weights`` through the real dispatcher (in-process and as a script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import protocol as P
from gt_widget.cli import main
from gt_widget.groundtruth.formats import read_consolidated_png

REPO = Path(__file__).resolve().parents[2]


def _scene(path: Path, rng: np.random.Generator) -> None:
    yy, xx = np.mgrid[0:100, 0:140]
    obj = (xx - 70) ** 2 + (yy - 50) ** 2 <= 25**2
    img = np.where(obj[..., None], (220, 200, 30), (30, 60, 160)) + rng.normal(0, 8, (100, 140, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def test_segment_folder_with_grabcut(
    tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for name in ("one.png", "two.png"):
        _scene(src / name, rng)
    (src / "three.png").write_bytes(b"\x89PNG broken")
    prompts = tmp_path / "prompts.json"
    pts = [[70, 25], [70, 75], [45, 50], [95, 50]]
    prompts.write_text(
        json.dumps(
            {
                "one.png": [{"label": "sun", "extreme_points": pts}],
                "two.png": [{"label": "sun", "box": [42, 22, 98, 78]}],
                "three.png": [{"label": "sun", "box": [1, 1, 9, 9]}],
            }
        )
    )
    code = main(
        [
            "segment",
            str(src),
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "out"),
            "--segmenter",
            "grabcut",
            "--job-name",
            "pre",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1  # one image failed, and the exit code says so
    assert "pre-labeled 2 image(s), 1 failed" in out and "three.png" in out
    lines = (tmp_path / "out" / "pre" / "manifests" / "output" / "output.manifest").read_text().splitlines()
    assert len(lines) == 2
    label_map = read_consolidated_png(Path(json.loads(lines[0])["label-ref"]).read_bytes())
    yy, xx = np.mgrid[0:100, 0:140]
    truth = (xx - 70) ** 2 + (yy - 50) ** 2 <= 25**2
    assert P.iou(label_map == 1, truth) > 0.9


def test_bad_arguments_give_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(tmp_path / "absent.pt"))  # and no model is even looked for
    code = main(["segment", str(tmp_path / "nowhere"), "--prompts", "p.json", "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.weights
@pytest.mark.slow
def test_segment_real_images_with_mobilesam_as_a_script(tmp_path: Path, grabcut_dir: Path, weights_path: Path) -> None:
    """The installed-style entry point, MobileSAM on 2 real GrabCut-50 images from an input manifest."""
    samples = [s for s in P.load_set("grabcut") if s.id in ("124080", "llama")]
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(s.image_path)}) + "\n" for s in samples))
    gts = {s.id: s.load() for s in samples}
    prompts = {
        s.image_path.name: [{"label": "object", "extreme_points": P.extreme_points(gts[s.id][1]).tolist()}]
        for s in samples
    }
    (tmp_path / "p.json").write_text(json.dumps(prompts))
    env = dict(os.environ, GT_WIDGET_WEIGHTS=str(weights_path))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gt_widget.cli",
            "segment",
            str(manifest),
            "--prompts",
            str(tmp_path / "p.json"),
            "--out",
            str(tmp_path / "out"),
            "--segmenter",
            "mobilesam",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [
        json.loads(x)
        for x in (tmp_path / "out" / "gt-widget-prelabel" / "manifests" / "output" / "output.manifest")
        .read_text()
        .splitlines()
    ]
    assert len(lines) == 2
    for s, line in zip(samples, lines, strict=True):
        assert line["source-ref"] == str(s.image_path)
        _, gt, void = gts[s.id]
        label_map = read_consolidated_png(Path(line["label-ref"]).read_bytes())
        assert P.iou(label_map == 1, gt, void) > 0.9
        assert 0.5 < line["label-ref-metadata"]["internal-color-map"]["1"]["confidence"] <= 1.0


@pytest.mark.weights
def test_weights_path_prints_the_verified_file(
    weights_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(weights_path))
    assert main(["weights", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(weights_path)
    assert main(["weights", "fetch", "--path", str(weights_path), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(weights_path)


def test_weights_path_without_weights_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(tmp_path / "absent.pt"))
    assert main(["weights", "path"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_segment_commands_parse_without_the_other_areas() -> None:
    """``gt-widget segment`` / ``weights`` build only the segment area's parser (a batch run does not pay the
    widget's imports); their options and help are the full parser's."""
    import argparse

    from gt_widget.cli import build_parser
    from gt_widget.segment.cli import COMMANDS

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    full = subcommands(build_parser())
    assert set(COMMANDS) < set(full)  # the full parser has them and more
    for command in COMMANDS:
        lean = subcommands(build_parser(command))
        assert set(lean) == set(COMMANDS)
        assert lean[command].format_help() == full[command].format_help()
    assert set(subcommands(build_parser("export"))) == set(full)
    code = (
        "import sys; from gt_widget.cli import main; main(['weights', 'path']); "
        "print(sorted(m for m in ('gt_widget.widget', 'ipywidgets') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
