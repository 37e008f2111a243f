"""job_from_notebook / job_from_session: what the notebook shows becomes a valid, safe Ground Truth job."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from gt_widget.groundtruth.bundle import JobBundle
from gt_widget.groundtruth.notebook import NotebookError, job_from_notebook, job_from_session, read_notebook
from tests.groundtruth.conftest import check_golden, check_golden_json
from tests.groundtruth.nbfixtures import labeling_notebook, tiny_png, write_notebook

AWS = {
    "s3_prefix": "s3://my-bucket/gt",
    "role_arn": "arn:aws:iam::123456789012:role/GroundTruth",
    "workteam_arn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets",
}


def test_notebook_becomes_a_valid_job(tmp_path: Path) -> None:
    bundle = job_from_notebook(labeling_notebook(tmp_path), **AWS)
    assert bundle.problems == []
    s = bundle.settings
    assert (s.job_name, s.labels, s.mode) == ("pets-2024", ["cat", "dog"], "semantic")
    assert bundle.label_config == {"document-version": "2018-11-28", "labels": [{"label": "cat"}, {"label": "dog"}]}
    assert bundle.manifest == [
        {"source-ref": "s3://my-bucket/gt/pets-2024/images/0-a.png"},
        {"source-ref": "s3://my-bucket/gt/pets-2024/images/1-b.png"},
    ]
    uploads = {u.uri: u.read() for u in bundle.uploads}
    assert uploads["s3://my-bucket/gt/pets-2024/images/0-a.png"] == tiny_png(10)
    assert uploads["s3://my-bucket/gt/pets-2024/instructions/good.png"] == tiny_png(30)
    assert uploads["s3://my-bucket/gt/pets-2024/instructions/bad.png"] == tiny_png(40)  # a pasted attachment
    assert bundle.request["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"] == s.template_uri
    assert bundle.request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] == s.manifest_uri
    # the template carries the notebook's instructions and examples
    assert "Paint <strong>every</strong> pet." in bundle.template
    assert "<ol><li>Look at the image.</li><li>Paint each pet.</li></ol>" in bundle.template
    assert "{{ 's3://my-bucket/gt/pets-2024/instructions/good.png' | grant_read_access }}" in bundle.template
    assert "GOOD EXAMPLE" in bundle.template and "BAD EXAMPLE" in bundle.template
    check_golden("notebook_job.liquid.html", bundle.template)
    check_golden_json("notebook_job.request.json", bundle.request)
    check_golden("notebook_job.preview.html", bundle.render())


def test_bundle_folder_round_trip(tmp_path: Path) -> None:
    bundle = job_from_notebook(labeling_notebook(tmp_path / "nb"), **AWS)
    folder = bundle.write(tmp_path / "job")
    assert sorted(p.name for p in folder.iterdir()) == [
        "files",
        "input.manifest",
        "job.json",
        "label-categories.json",
        "preview.html",
        "request.json",
        "sample-task-input.json",
        "template.liquid.html",
    ]
    back = JobBundle.read(folder)
    assert back.request == bundle.request and back.manifest == bundle.manifest and back.template == bundle.template
    assert back.settings == bundle.settings
    assert {u.uri: u.read() for u in back.uploads} == {u.uri: u.read() for u in bundle.uploads}
    assert back.problems == []


def test_labels_by_literal_positional_and_widget(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(tiny_png(1))
    nb = write_notebook(
        tmp_path / "w.ipynb",
        [
            nbformat.v4.new_code_cell(
                "from gt_widget.widget import SegmentationWidget\nw = SegmentationWidget('x.png', ['road', 'car'], 'instance')"
            )
        ],
    )
    spec = read_notebook(nb)
    assert (spec.labels, spec.mode, spec.sources) == (["road", "car"], "instance", ["x.png"])
    bundle = job_from_notebook(nb, **AWS)
    assert bundle.settings.job_name == "w"
    assert bundle.problems == []
    # instance jobs are custom PassThrough jobs: the template gets the manifest line and baked labels
    assert bundle.sample_input == {"source-ref": "s3://my-bucket/gt/w/images/0-x.png"}
    assert json.loads(
        bundle.render().split('labels="', 1)[1].split('"', 1)[0].replace("&#34;", '"').replace("&quot;", '"')
    ) == ["road", "car"]


def test_notebook_without_widget_is_a_clear_error(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "empty.ipynb", [nbformat.v4.new_code_cell("print('hello')")])
    with pytest.raises(NotebookError, match=r"creates no SegmentationWidget\(...\) or LabelingSession"):
        job_from_notebook(nb, **AWS)


def test_conflicting_label_lists_are_a_clear_error(tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "two.ipynb",
        [
            nbformat.v4.new_code_cell("a = SegmentationWidget('x.png', labels=['cat', 'dog'])"),
            nbformat.v4.new_code_cell("b = SegmentationWidget('y.png', labels=['cat', 'bird'])"),
        ],
    )
    with pytest.raises(NotebookError, match=r"two conflicting label lists: cell 1 \['cat', 'dog'\] and cell 2"):
        job_from_notebook(nb, **AWS)
    (tmp_path / "x.png").write_bytes(tiny_png(1))
    (tmp_path / "y.png").write_bytes(tiny_png(2))
    bundle = job_from_notebook(nb, labels=["cat", "dog", "bird"], **AWS)  # the caller settles it
    assert bundle.settings.labels == ["cat", "dog", "bird"] and len(bundle.manifest) == 2


def test_non_literal_labels_and_images(tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "dyn.ipynb", [nbformat.v4.new_code_cell("w = SegmentationWidget(img, labels=load_labels())")]
    )
    with pytest.raises(NotebookError, match="not a literal list"):
        job_from_notebook(nb, **AWS)
    nb = write_notebook(
        tmp_path / "dyn2.ipynb", [nbformat.v4.new_code_cell("w = SegmentationWidget(img, labels=['a'])")]
    )
    with pytest.raises(NotebookError, match="pass sources="):
        job_from_notebook(nb, **AWS)
    bundle = job_from_notebook(nb, sources=["s3://my-bucket/data/1.jpg"], **AWS)
    assert bundle.manifest == [{"source-ref": "s3://my-bucket/data/1.jpg"}] and bundle.uploads == []


def test_missing_image_file_is_a_clear_error(tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "m.ipynb", [nbformat.v4.new_code_cell("w = SegmentationWidget('gone.png', labels=['a'])")]
    )
    with pytest.raises(Exception, match=r"gone\.png") as info:
        job_from_notebook(nb, **AWS)
    assert "Traceback" not in str(info.value)


def test_hostile_notebook_renders_escaped(tmp_path: Path) -> None:
    labels = 'LABELS = ["<script>alert(1)</script>", "a&b", "q\\"uote"]'
    bundle = job_from_notebook(labeling_notebook(tmp_path, labels_code=labels, hostile=True), **AWS)
    html = bundle.render()
    assert "<script>alert" not in html
    assert html.count("<script") == 1
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html  # the instruction, shown as text
    assert "&#123;&#123; task.input &#125;&#125;" in bundle.template  # Liquid in user text is neutralised
    assert bundle.problems == []


def test_job_from_session(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(tiny_png(5))
    session = SimpleNamespace(
        labels=["tumour"],
        mode="semantic",
        sources=[str(tmp_path / "a.png"), "s3://my-bucket/scans/b.png"],
        output_dir=tmp_path / "out",
        label_attribute="scan-ref",
        job_name="scans-1",
    )
    bundle = job_from_session(
        session, short_instructions="Paint the tumour.", good_examples=["s3://my-bucket/ex/g.png"], **AWS
    )
    assert bundle.problems == []
    assert bundle.settings.job_name == "scans-1" and bundle.request["LabelAttributeName"] == "scan-ref"
    assert bundle.manifest == [
        {"source-ref": "s3://my-bucket/gt/scans-1/images/0-a.png"},
        {"source-ref": "s3://my-bucket/scans/b.png"},
    ]
    assert "Paint the tumour." in bundle.template
    with pytest.raises(NotebookError, match=r"no \.labels"):
        job_from_session(object(), **AWS)


def test_invalid_settings_surface_as_problems(tmp_path: Path) -> None:
    bundle = job_from_notebook(
        labeling_notebook(tmp_path), workers_per_object=12, keywords=["semantic-seg"], label_attribute="pets", **AWS
    )
    problems = bundle.problems
    assert any(p.startswith("HumanTaskConfig.NumberOfHumanWorkersPerDataObject") for p in problems)
    assert any(p.startswith("HumanTaskConfig.TaskKeywords[0]") for p in problems)
    assert any(p.startswith("LabelAttributeName") for p in problems)


def test_session_defines_the_job_and_demo_widgets_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(tiny_png(1))
    nb = write_notebook(
        tmp_path / "q.ipynb",
        [
            nbformat.v4.new_code_cell(
                "LABELS = ['cat', 'dog']\ns = LabelingSession('imgs', LABELS, 'out', 'semantic')"
            ),
            nbformat.v4.new_code_cell("demo = SegmentationWidget(img, labels=['person'], mode='instance')"),
        ],
    )
    spec = read_notebook(nb)
    assert (spec.labels, spec.mode, spec.sources) == (["cat", "dog"], "semantic", ["imgs"])
    nb2 = write_notebook(
        tmp_path / "q2.ipynb",
        [
            nbformat.v4.new_code_cell("s = LabelingSession('imgs', ['cat'], 'out')"),
            nbformat.v4.new_code_cell("t = LabelingSession('imgs', ['cat'], 'out', mode='instance')"),
        ],
    )
    with pytest.raises(NotebookError, match="mixes modes"):
        read_notebook(nb2)


@pytest.mark.parametrize("mode", ["semantic", "instance"])
def test_adjustment_job_from_session_results(tmp_path: Path, mode: str) -> None:
    """Pre-label in the notebook, then send the results to Ground Truth workers to adjust (§1.4)."""
    import html as html_lib
    import re

    import numpy as np

    from gt_widget.groundtruth.formats import Instance, consolidated_png, output_manifest_line
    from gt_widget.groundtruth.manifest import write_manifest

    (tmp_path / "a.png").write_bytes(tiny_png(5))
    (tmp_path / "b.png").write_bytes(tiny_png(6))
    png = tmp_path / "job" / "annotations" / "consolidated-annotation" / "output" / "0_2024.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(consolidated_png(np.ones((6, 8), np.uint8), ["#2ca02c"]))
    instances = [Instance("cat", "#2ca02c")] if mode == "instance" else None
    line = output_manifest_line(
        str(tmp_path / "a.png"), "pets-ref", str(png), ["cat", "dog"], job_name="job", mode=mode, instances=instances
    )  # type: ignore[arg-type]
    manifest = write_manifest(tmp_path / "job" / "manifests" / "output" / "output.manifest", [line], require_s3=False)
    session = SimpleNamespace(
        labels=["cat", "dog"],
        mode=mode,
        sources=[str(tmp_path / "a.png"), str(tmp_path / "b.png")],  # b is not labeled: not in the job
        output_dir=tmp_path,
        label_attribute="pets-ref",
        job_name="job",
        output_manifest_path=manifest,
    )
    bundle = job_from_session(session, adjust_results=True, job_name="pets-adjust", **AWS)
    assert bundle.problems == []
    expected = "pets-adjusted-ref" if mode == "semantic" else "pets-adjusted"  # custom jobs: no -ref (reference §8)
    assert bundle.request["LabelAttributeName"] == expected
    kind = "AdjustmentSemanticSegmentation" if mode == "semantic" else "PassThrough"
    assert bundle.request["HumanTaskConfig"]["PreHumanTaskLambdaArn"].endswith(f":PRE-{kind}")
    (only,) = bundle.manifest
    assert only["source-ref"] == "s3://my-bucket/gt/pets-adjust/images/0-a.png"
    assert only["pets-ref"] == "s3://my-bucket/gt/pets-adjust/prior/0_2024.png"
    assert {u.uri: u.read() for u in bundle.uploads}[only["pets-ref"]] == png.read_bytes()
    rendered = bundle.render()
    value = json.loads(html_lib.unescape(re.search(r"initial-value='([^']*)'", rendered).group(1)))  # type: ignore[union-attr]
    assert value["src"] == "https://my-bucket.s3.us-east-1.amazonaws.com/gt/pets-adjust/prior/0_2024.png"
    if mode == "semantic":
        assert value["labelMappings"] == {"cat": {"color": "#2ca02c"}, "dog": {"color": "#1f77b4"}}
    else:
        assert value["instances"] == [{"color": "#2ca02c", "label": "cat"}]
    bad = job_from_session(session, adjust_results=True, label_attribute="pets-ref", **AWS)
    assert any("adjustment job must write a different one" in p for p in bad.problems)
    session.output_manifest_path = tmp_path / "none.manifest"
    with pytest.raises(NotebookError, match="no saved results"):
        job_from_session(session, adjust_results=True, **AWS)


def test_section_headings_variants() -> None:
    from gt_widget.groundtruth.notebook import find_sections

    cells = [
        nbformat.v4.new_markdown_cell(
            "# Intro\n\n## Good example(s)\n\n![ok](s3://b/ok.png)\n\n## Bad Examples\n\n![no](s3://b/no.png)\n\n# Other\n\ntext"
        ),
        nbformat.v4.new_markdown_cell("### full instructions\n\nStep one.\n#### detail\nmore"),
        nbformat.v4.new_markdown_cell("Short and tagged", metadata={"tags": ["gt-short-instructions", "other"]}),
    ]
    sections, _ = find_sections(cells)
    assert sections["good"] == ["![ok](s3://b/ok.png)"]
    assert sections["bad"] == ["![no](s3://b/no.png)"]
    assert sections["full"] == ["Step one.\n#### detail\nmore"]  # a deeper heading stays inside the section
    assert sections["short"] == ["Short and tagged"]


def test_real_labeling_session_to_job_and_adjustment(tmp_path: Path) -> None:
    """job_from_session on D's LabelingSession: the images it shows, then its saved results to adjust."""
    session_mod = pytest.importorskip("gt_widget.widget.session")
    testing = pytest.importorskip("gt_widget.widget.testing")
    import numpy as np

    from gt_widget.groundtruth.formats import read_consolidated_png

    (tmp_path / "imgs").mkdir()
    for value in (1, 2):
        (tmp_path / "imgs" / f"{value}.png").write_bytes(tiny_png(value))
    session = session_mod.LabelingSession(
        str(tmp_path / "imgs"),
        ["cat", "cup"],
        tmp_path / "out",
        segmenter=testing.BoxSegmenter(),
        job_name="pets",
        prefetch=False,
    )
    try:
        assert session.widget.wait_idle(30)
        session.widget.label = "cup"
        session.widget.brush([(1, 1), (5, 1)], radius=1)
        assert session.flush()
        painted = session.widget.label_map.copy()
        job = job_from_session(session, **AWS)
        assert job.problems == [] and len(job.manifest) == 2 and job.settings.job_name == "pets"
        adjust = job_from_session(session, adjust_results=True, job_name="pets-adjust", **AWS)
    finally:
        session.close()
    assert adjust.problems == []
    (line,) = adjust.manifest
    prior_png = {u.uri: u.read() for u in adjust.uploads}[line["label-ref"]]
    np.testing.assert_array_equal(read_consolidated_png(prior_png), painted)  # the workers start from these pixels
