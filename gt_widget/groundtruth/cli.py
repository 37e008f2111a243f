"""``gt-widget job ...`` and ``gt-widget template render|builtin``.

Handlers return exit codes: 0 = success, 1 = the input has problems (listed one per line on stderr),
2 = an error (``gt_widget.cli`` prints ``error: ...``). Heavy imports happen inside handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gt_widget.cli import local_path

_JOB_HELP = """\
Turn a labeling notebook into an Amazon SageMaker Ground Truth job, and bring the results back.

Typical use:
  gt-widget job init labeling.ipynb --s3-prefix s3://my-bucket/gt \\
      --role-arn arn:aws:iam::123456789012:role/GroundTruth \\
      --workteam arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/my-team --out my-job
  gt-widget job render my-job > preview.html     # what workers will see (offline, unsigned image URLs)
  gt-widget job validate my-job/request.json      # exit 0 when valid, else one line per problem
  gt-widget job submit my-job                     # uploads to S3, calls CreateLabelingJob
  gt-widget job status my-job --wait              # polls DescribeLabelingJob
  gt-widget job fetch my-job --out results        # output manifest + PNGs, decoded and checked

AWS credentials and region come from the usual boto3 chain (aws configure, AWS_PROFILE, AWS_* variables).
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``job`` and its actions to the top-level parser."""
    job = sub.add_parser(
        "job",
        help="build, validate, submit and fetch Ground Truth labeling jobs",
        description=_JOB_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")

    init = actions.add_parser(
        "init",
        help="build a job folder (request, template, manifest, label config) from a notebook",
        description="Read the labels, mode, images, instructions and examples a notebook shows and write a job "
        "folder: request.json (CreateLabelingJob arguments), template.liquid.html, input.manifest, "
        "label-categories.json, preview.html and job.json. Nothing is sent to AWS.",
    )
    init.add_argument("notebook", type=local_path, help="the labeling notebook (.ipynb)")
    init.add_argument("--s3-prefix", required=True, help="s3://bucket/prefix where the job's inputs and outputs go")
    init.add_argument("--role-arn", required=True, help="IAM role Ground Truth assumes (S3 read/write, Lambda)")
    init.add_argument(
        "--workteam", required=True, help="workteam ARN of a private/vendor team, or 'public' (Mechanical Turk)"
    )
    init.add_argument("--region", default=None, help="AWS region of the job (default: boto3's, else us-east-1)")
    init.add_argument("--job-name", default=None, help="LabelingJobName (default: from the notebook)")
    init.add_argument("--out", type=local_path, default=None, help="job folder to write (default: ./<job-name>)")
    init.add_argument("--source", action="append", default=None, help="an image (path or s3:// URI); repeat")
    init.add_argument("--labels", default=None, help="comma-separated labels overriding the notebook's")
    init.add_argument("--label-attribute", default=None, help="LabelAttributeName (semantic: must end in -ref)")
    init.add_argument("--header", default=None, help="text shown above the image")
    init.add_argument("--title", default="", help="TaskTitle shown to workers")
    init.add_argument("--description", default="", help="TaskDescription shown to workers")
    init.add_argument("--keywords", default=None, help="comma-separated TaskKeywords (letters, digits, spaces)")
    init.add_argument("--workers", type=int, default=None, help="workers per image (default 3 semantic, 1 instance)")
    init.add_argument("--task-time-limit", type=int, default=600, help="seconds a worker has per task (30-28800)")
    init.add_argument("--availability", type=int, default=None, help="seconds a task stays available")
    init.add_argument("--max-concurrent", type=int, default=None, help="MaxConcurrentTaskCount (1-5000)")
    init.add_argument("--max-labeled", type=int, default=None, help="stop after this many labeled images")
    init.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag; repeat")
    init.add_argument(
        "--price",
        default=None,
        help="public workforce price per task in USD: semantic segmentation accepts only 0.840, 0.960, 1.080 or 1.200; "
        "instance segmentation (a custom task) 0.012 to 1.200, e.g. 0.036",
    )
    init.add_argument("--free-of-pii", action="store_true", help="declare the images free of personal information")
    init.add_argument("--free-of-adult-content", action="store_true", help="declare the images free of adult content")
    init.set_defaults(func=_job_init)

    render = actions.add_parser(
        "render",
        help="render a job folder's template with its sample task input to HTML",
        description="Print the worker page of a job folder (or write it with --out). Image URLs are unsigned "
        "https URLs unless --presign is given (then boto3 presigns them with your credentials).",
    )
    render.add_argument("folder", type=local_path, help="a job folder written by `gt-widget job init`")
    render.add_argument("--presign", action="store_true", help="presign S3 images with boto3")
    render.add_argument("--out", type=local_path, default=None, help="write the HTML here instead of stdout")
    render.set_defaults(func=_job_render)

    validate = actions.add_parser(
        "validate",
        help="check CreateLabelingJob arguments (JSON) against botocore's model and Ground Truth's rules",
        description="Exit 0 when REQUEST.json (the CreateLabelingJob keyword arguments as JSON, or a job folder) "
        "is valid; else exit 1 with one line per problem, each naming the field. No AWS call is made.",
    )
    validate.add_argument("request", type=local_path, help="request.json, or a job folder")
    validate.add_argument("--mode", choices=("semantic", "instance"), default=None, help="task mode, if known")
    validate.set_defaults(func=_job_validate)

    submit = actions.add_parser(
        "submit",
        help="upload a job folder's files to S3 and call CreateLabelingJob",
        description="Validate first (nothing is sent when there are problems), then upload images, instruction "
        "images, manifest, template and label config, then create the labeling job.",
    )
    submit.add_argument("folder", type=local_path, help="a job folder written by `gt-widget job init`")
    submit.add_argument("--dry-run", action="store_true", help="validate and list the uploads, send nothing")
    submit.set_defaults(func=_job_submit)

    status = actions.add_parser("status", help="show a labeling job's status (DescribeLabelingJob)")
    status.add_argument("job", help="job name, or a job folder")
    status.add_argument("--region", default=None, help="AWS region (default: the folder's, else boto3's)")
    status.add_argument("--wait", action="store_true", help="poll until Completed, Failed or Stopped")
    status.add_argument("--poll", type=float, default=30.0, help="seconds between polls (default 30)")
    status.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    status.set_defaults(func=_job_status)

    fetch = actions.add_parser(
        "fetch",
        help="download a finished job's output manifest and PNGs and decode them",
        description="Download <output>/manifests/output/output.manifest and every consolidated PNG into --out, "
        "decode each result (checking its colours against the label map) and print one line per image.",
    )
    fetch.add_argument("job", help="job name, or a job folder")
    fetch.add_argument("--out", type=local_path, required=True, help="folder for the downloaded results")
    fetch.add_argument("--region", default=None, help="AWS region (default: the folder's, else boto3's)")
    fetch.set_defaults(func=_job_fetch)


def register_template(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``render`` and ``builtin`` to the ``template`` group."""
    render = sub.add_parser(
        "render",
        help="render a Liquid task template with a task input to HTML",
        description="Print TEMPLATE rendered the way Ground Truth renders it (autoescape on; escape, "
        "escape_once, skip_autoescape, to_json, grant_read_access). grant_read_access presigns S3 images with "
        "boto3's usual credentials and region. The HTML then contains presigned URLs: treat it like one.",
    )
    render.add_argument("template", type=local_path, help="a .liquid.html / .html template file")
    render.add_argument(
        "--input",
        required=True,
        help="task input (becomes task.input): a JSON file, or the JSON itself, e.g. "
        '\'{"taskObject": "s3://b/k.jpg", "labels": ["cat"]}\'',
    )
    render.add_argument("--expires-in", type=int, default=3600, help="presigned URL lifetime in seconds")
    render.add_argument("--out", type=local_path, default=None, help="write the HTML here instead of stdout")
    render.set_defaults(func=_template_render)

    builtin = sub.add_parser(
        "builtin",
        help="print a built-in semantic or instance segmentation template",
        description="Print the Liquid source of the built-in <crowd-semantic-segmentation> or "
        "<crowd-instance-segmentation> template (upload it as UiTemplateS3Uri).",
    )
    builtin.add_argument("kind", choices=("semantic", "instance"))
    builtin.add_argument("--header", default=None, help="text shown above the image")
    builtin.add_argument("--short-instructions", default=None, help="Markdown shown in the sidebar")
    builtin.add_argument("--full-instructions", default=None, help="Markdown shown under 'View full instructions'")
    builtin.add_argument("--good-example", action="append", default=[], help="good example image URI; repeat")
    builtin.add_argument("--bad-example", action="append", default=[], help="bad example image URI; repeat")
    builtin.add_argument("--labels", default=None, help="comma-separated labels baked in for custom (PassThrough) jobs")
    builtin.add_argument("--prior-label-attribute", default=None, help="adjustment jobs: the prior job's attribute")
    builtin.set_defaults(func=_template_builtin)


# --------------------------------------------------------------------------------------------- handlers


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from gt_widget.fileio import atomic_write_text

    atomic_write_text(out, text)
    print(f"wrote {out}", file=sys.stderr)


def _print_problems(problems: list[str]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _default_region(region: str | None) -> str:
    if region:
        return region
    import boto3

    return boto3.session.Session().region_name or "us-east-1"


def _job_init(args: argparse.Namespace) -> int:
    from gt_widget.errors import ValidationError
    from gt_widget.groundtruth.notebook import job_from_notebook

    settings: dict[str, Any] = {
        "title": args.title,
        "description": args.description,
        "workers_per_object": args.workers,
        "task_time_limit": args.task_time_limit,
        "availability_lifetime": args.availability,
        "max_concurrent_tasks": args.max_concurrent,
        "max_labeled_objects": args.max_labeled,
        "price_usd": args.price,
        "free_of_pii": args.free_of_pii,
        "free_of_adult_content": args.free_of_adult_content,
    }
    if args.keywords is not None:
        settings["keywords"] = _split(args.keywords)
    if args.label_attribute:
        settings["label_attribute"] = args.label_attribute
    tags = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep:
            raise ValidationError([f"--tag {tag!r}: write KEY=VALUE"])
        tags[key] = value
    settings["tags"] = tags
    bundle = job_from_notebook(
        args.notebook,
        s3_prefix=args.s3_prefix,
        role_arn=args.role_arn,
        workteam_arn=args.workteam,
        region=_default_region(args.region),
        job_name=args.job_name,
        sources=args.source,
        labels=_split(args.labels),
        header=args.header,
        **settings,
    )
    folder = bundle.write(args.out or Path(bundle.settings.job_name))
    s = bundle.settings
    print(f"job folder: {folder}")
    print(f"  job name:  {s.job_name} ({s.mode}, {len(bundle.manifest)} images, labels {', '.join(s.labels)})")
    print(f"  uploads:   {len(bundle.uploads)} local files -> {s.manifest_uri.rsplit('/', 1)[0]}/")
    print(f"  output:    {s.output_path}")
    problems = bundle.problems
    if problems:
        print(f"{len(problems)} problem(s) to fix before submitting:", file=sys.stderr)
    else:
        print("valid: `gt-widget job submit " + str(folder) + "` creates it")
    return _print_problems(problems)


def _job_render(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.bundle import JobBundle
    from gt_widget.groundtruth.templates import boto3_presigner

    bundle = JobBundle.read(args.folder)
    html = bundle.render(presign=boto3_presigner() if args.presign else None)
    _emit(html, args.out)
    _warn_session_token(html)
    return 0


def _warn_session_token(html: str) -> None:
    """Say so when written HTML holds presigned URLs with a session token (``template render``, ``job render``)."""
    if "X-Amz-Security-Token=" in html:
        print(
            "note: the presigned URLs in this HTML embed your temporary credentials' session token (that is how "
            "presigned URLs work); do not share the HTML beyond the URLs' lifetime",
            file=sys.stderr,
        )


def _load_request(path: Path) -> Any:
    from gt_widget.errors import FormatError

    target = path / "request.json" if path.is_dir() else path
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{str(target)!r} not found: give request.json or a job folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{str(target)!r} is not a JSON file: {exc}") from None


def _job_validate(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.request import request_problems

    problems = request_problems(_load_request(args.request), mode=args.mode)
    if not problems:
        print("valid")
    return _print_problems(problems)


def _job_submit(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.aws import submit
    from gt_widget.groundtruth.bundle import JobBundle

    bundle = JobBundle.read(args.folder)
    problems = bundle.problems
    if problems:
        print("not submitted; fix these first:", file=sys.stderr)
        return _print_problems(problems)
    if args.dry_run:
        for up in bundle.uploads:
            print(f"upload {up.path or '(notebook attachment)'} -> {up.uri}")
        for uri in (bundle.settings.label_config_uri, bundle.settings.template_uri, bundle.settings.manifest_uri):
            print(f"upload -> {uri}")
        print(f"CreateLabelingJob {bundle.settings.job_name} (dry run: nothing sent)")
        return 0
    arn = submit(bundle)
    print(arn)
    return 0


def _job_target(job: str, region: str | None) -> tuple[str, str | None]:
    path = Path(job)
    if path.is_dir():
        from gt_widget.groundtruth.bundle import JobBundle

        bundle = JobBundle.read(path)
        return bundle.settings.job_name, region or bundle.settings.region
    return job, region


def _job_status(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.aws import job_status, sagemaker_client, wait

    name, region = _job_target(args.job, args.region)
    client = sagemaker_client(region)
    if args.wait:
        final = wait(
            name,
            sagemaker=client,
            poll_seconds=args.poll,
            timeout=args.timeout,
            on_status=lambda s: print(s.summary(), flush=True),
        )
        return 0 if final.status == "Completed" else 1
    print(job_status(name, sagemaker=client).summary())
    return 0


def _job_fetch(args: argparse.Namespace) -> int:
    import numpy as np

    from gt_widget.groundtruth.aws import fetch_results, sagemaker_client
    from gt_widget.groundtruth.formats import SemanticResult

    name, region = _job_target(args.job, args.region)
    items = fetch_results(name, args.out, sagemaker=sagemaker_client(region))
    for item in items:
        r = item.result
        if isinstance(r, SemanticResult):
            counts = {label: int(np.count_nonzero(r.label_map == i + 1)) for i, label in enumerate(r.labels)}
            what = ", ".join(f"{k} {v} px" for k, v in counts.items())
        else:
            what = f"{len(r.instances)} instances"
        print(f"{item.index}\t{item.source_ref}\t{what}")
    print(f"{len(items)} results in {args.out}", file=sys.stderr)
    return 0


def read_task_input(value: str) -> Any:
    """A ``--input`` value: inline JSON (starts with ``{``) or the path of a JSON file; ``FormatError`` saying
    which it was taken for and what is wrong."""
    from gt_widget.errors import FormatError

    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise FormatError(f"--input looks like inline JSON but is not valid JSON: {exc}") from None
    try:
        path = local_path(value)
    except argparse.ArgumentTypeError as exc:
        raise FormatError(f"--input {exc}") from None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(
            f"task input file {value!r} not found; give a JSON file or the JSON itself, e.g. "
            '\'{"taskObject": "s3://b/k.jpg", "labels": ["cat"]}\''
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"task input {value!r} is not a JSON file: {exc}") from None


def _template_render(args: argparse.Namespace) -> int:
    from gt_widget.errors import FormatError
    from gt_widget.groundtruth.templates import render_template

    task_input = read_task_input(args.input)
    if not args.template.is_file():
        raise FormatError(f"template {str(args.template)!r} not found")
    html = render_template(args.template, task_input, expires_in=args.expires_in)
    _emit(html, args.out)
    _warn_session_token(html)
    return 0


def _template_builtin(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.templates import builtin_template

    sys.stdout.write(
        builtin_template(
            args.kind,
            header=args.header,
            short_instructions=args.short_instructions,
            full_instructions=args.full_instructions,
            good_examples=args.good_example,
            bad_examples=args.bad_example,
            labels=_split(args.labels),
            prior_label_attribute=args.prior_label_attribute,
        )
    )
    return 0
