"""The ``CreateLabelingJob`` request: built from a few choices, validated before any AWS call.

Facts (../shared/reference/ground-truth.md §3.2, §5): required members and constraints come from
botocore's own ``sagemaker`` service model (loaded with ``botocore.session``); botocore's client-side
``ParamValidator`` checks only required members, types and minimums, so the model's maximums, patterns and
enums are checked here from the same model, plus the rules the model cannot express (§5.2 table, §5.3-5.5).
Every problem is one line: ``Field.Path: value ... breaks rule; what to do``.

Choices (the reference leaves them to us):
- Semantic segmentation uses the AWS-owned ``PRE-/ACS-SemanticSegmentation`` Lambdas (``Adjustment...`` for
  adjustment jobs): Ground Truth then consolidates several workers' masks pixel by pixel (§3.4) and writes
  the ``-ref`` PNG output (§3.2).
- Instance segmentation has no built-in task type or output format (§3.2), so it runs as a custom job. We
  use the AWS-owned ``PRE-PassThrough`` / ``ACS-PassThrough`` Lambdas (documented as "Generative AI/Custom -
  direct passthrough", present in every region, §5.3) instead of asking users to deploy their own: the
  template then receives the manifest line as ``task.input`` (so it reads ``task.input.source-ref`` and
  carries its labels, see ``templates.builtin_template(labels=...)``), and each worker's answer is kept
  unconsolidated; ``aws.fetch_results`` reads the worker-response files. Users with their own Lambdas pass
  ``pre_lambda_arn`` / ``acs_lambda_arn``. Default one worker per object, since nothing merges instances.
- There is no built-in ``HumanTaskUiArn`` for image segmentation (§5.4): ``UiTemplateS3Uri`` is required.
- Patterns of the model are Java regular expressions (the service is Java): ``.`` does not match line
  terminators (``\n``, ``\r``, U+0085, U+2028, U+2029), so neither does ours, and a description holding
  U+2028 is refused as the service would.
- The default ``TaskTitle`` keeps only the characters the model's ``TaskTitle`` pattern allows (an emoji in a
  label is dropped from the title, not from the label).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from gt_widget.errors import ValidationError

Mode = Literal["semantic", "instance"]

REGION_ACCOUNTS: dict[str, str] = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
"""Account that owns Ground Truth's PRE-/ACS- Lambdas in each region (§5.3)."""

PUBLIC_WORKTEAM_ACCOUNT = "394669845002"
MAX_TASK_TIME_LIMIT = 28_800
"""Image and custom jobs: at most 8 hours per task (§5.2)."""
MAX_AVAILABILITY_PUBLIC = 43_200
MAX_AVAILABILITY_PRIVATE = 30 * 24 * 3600
SEMANTIC_TASK_TYPES = frozenset(
    {"SemanticSegmentation", "AdjustmentSemanticSegmentation", "VerificationSemanticSegmentation"}
)
"""AWS-owned Lambda task types of image semantic segmentation jobs (§5.3)."""

_CUSTOM_PRICES = "0.012 0.024 0.036 0.048 0.060 0.072 0.120 0.240 0.360 0.480 0.600 0.720 0.840 0.960 1.080 1.200"
PUBLIC_PRICES_USD: dict[str, tuple[Decimal, ...]] = {
    "semantic": tuple(Decimal(v) for v in ["0.840", "0.960", "1.080", "1.200"]),
    "custom": tuple(Decimal(v) for v in _CUSTOM_PRICES.split()),
}
"""The only prices (USD per task) the public workforce accepts, per task type: botocore's
``PublicWorkforceTaskPrice`` documentation (reference §8) lists 0.840-1.200 for semantic segmentation and
0.012-1.200 for "image classification, text classification, and custom tasks" (instance segmentation runs as
a custom task). ``tests/groundtruth/test_request.py`` re-reads the tables from botocore's model."""

MAX_IMAGE_BYTES = 40 * 1024 * 1024
"""Ground Truth's per-image file size quota, "40 MB" (reference §3.1, DG input-data-limits). The source does
not say decimal or binary; AWS quotas written "MB" are binary elsewhere (Lambda's 6 MB payload), and the
template preview (``gt_widget.preview.images``) uses the same 40 MiB."""

PII_FREE = "FreeOfPersonallyIdentifiableInformation"
ADULT_FREE = "FreeOfAdultContent"

_TASK_TYPES = {
    ("semantic", False): "SemanticSegmentation",
    ("semantic", True): "AdjustmentSemanticSegmentation",
    ("instance", False): "PassThrough",
    ("instance", True): "PassThrough",
}
_AWS_LAMBDA = re.compile(r"^arn:aws:lambda:([a-z0-9\-]+):(\d{12}):function:(PRE|ACS)-([A-Za-z0-9]+)$")
_WORKTEAM = re.compile(r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):(\d{12}):workteam/(.*)$")
_LAMBDA_REGION = re.compile(r"^arn:aws[a-z\-]*:lambda:([a-z0-9\-]*):")
_KMS_REGION = re.compile(r"^arn:aws[a-z\-]*:kms:([a-z0-9\-]*):")
_PARTITION = re.compile(r"^arn:(aws[a-z\-]*):")
_JAVA_LINE_TERMINATORS = "\n\r\u0085\u2028\u2029"


def _check_region(region: str) -> str:
    if region not in REGION_ACCOUNTS:
        raise ValidationError(
            [f"region: {region!r} has no Ground Truth Lambdas; choose one of {', '.join(sorted(REGION_ACCOUNTS))}"]
        )
    return region


def task_type(mode: Mode, adjustment: bool = False) -> str:
    """The AWS Lambda task type of a job: ``SemanticSegmentation``, ``AdjustmentSemanticSegmentation``, ..."""
    return _TASK_TYPES[(mode, adjustment)]


def lambda_arns(region: str, mode: Mode = "semantic", adjustment: bool = False) -> tuple[str, str]:
    """(PreHumanTaskLambdaArn, AnnotationConsolidationLambdaArn) owned by AWS in ``region`` (§5.3)."""
    account = REGION_ACCOUNTS[_check_region(region)]
    kind = task_type(mode, adjustment)
    base = f"arn:aws:lambda:{region}:{account}:function"
    return f"{base}:PRE-{kind}", f"{base}:ACS-{kind}"


def public_workteam_arn(region: str) -> str:
    """Amazon Mechanical Turk's workteam in ``region`` (§5.5)."""
    return f"arn:aws:sagemaker:{_check_region(region)}:{PUBLIC_WORKTEAM_ACCOUNT}:workteam/public-crowd/default"


def is_public_workteam(arn: str) -> bool:
    """Whether ``arn`` is the public (Mechanical Turk) workteam."""
    m = _WORKTEAM.match(arn or "")
    return bool(m and m.group(2) == PUBLIC_WORKTEAM_ACCOUNT and m.group(3).startswith("public-crowd"))


def public_price_table(mode: Mode | None) -> tuple[Decimal, ...]:
    """Prices the public workforce accepts for a job of ``mode`` (semantic: 0.840-1.200; custom tasks such
    as instance segmentation: 0.012-1.200)."""
    return PUBLIC_PRICES_USD["semantic" if mode == "semantic" else "custom"]


def default_title(labels: Sequence[str], mode: Mode) -> str:
    """``"Image semantic segmentation: cat, dog"`` with only the characters ``TaskTitle`` allows (an emoji
    in a label is left out of the title), at most 128 characters."""
    what = "semantic segmentation" if mode == "semantic" else "instance segmentation"
    allowed = _title_char_allowed()
    names = [re.sub(r"\s+", " ", "".join(ch for ch in label if allowed(ch))).strip() for label in labels]
    text = f"Image {what}: {', '.join(n for n in names if n)}"
    return text[:128].rstrip(" ,:")


@lru_cache(maxsize=1)
def _title_char_allowed() -> Callable[[str], bool]:
    pattern = _operation_model().input_shape.members["HumanTaskConfig"].members["TaskTitle"].metadata["pattern"]
    matcher = _pattern_matcher(pattern)
    return (lambda ch: matcher(ch)) if matcher is not None else (lambda ch: True)


def price_amount(usd: str | float | Decimal) -> dict[str, int]:
    """``"0.036"`` -> ``{"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}`` (PublicWorkforceTaskPrice)."""
    try:
        value = Decimal(str(usd))
    except InvalidOperation:
        raise ValidationError([f"price: {usd!r} is not a number of US dollars, e.g. '0.036'"]) from None
    tenths = value * 1000
    if value < 0 or tenths != tenths.to_integral_value():
        raise ValidationError(
            [f"price: {usd!r} must be >= 0 with at most 3 decimals (a tenth of a cent), e.g. '0.036'"]
        )
    n = int(tenths)
    return {"Dollars": n // 1000, "Cents": (n // 10) % 100, "TenthFractionsOfACent": n % 10}


# --------------------------------------------------------------------------------------------- settings


@dataclass
class JobSettings:
    """Everything a labeling job needs that the notebook does not say. S3 locations are ``s3://`` URIs."""

    job_name: str
    labels: list[str]
    role_arn: str
    manifest_uri: str
    output_path: str
    template_uri: str
    label_config_uri: str
    mode: Mode = "semantic"
    label_attribute: str = "label-ref"
    region: str = "us-east-1"
    workteam_arn: str = ""
    """A private/vendor workteam ARN, or ``"public"`` for Mechanical Turk (needs ``price_usd``)."""
    title: str = ""
    description: str = ""
    keywords: list[str] = field(default_factory=lambda: ["image", "segmentation"])
    workers_per_object: int | None = None
    """Default: 3 for semantic (the console's default, consolidated per pixel), 1 for instance."""
    task_time_limit: int = 600
    availability_lifetime: int | None = None
    max_concurrent_tasks: int | None = None
    max_labeled_objects: int | None = None
    max_percent_labeled: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    price_usd: str | None = None
    free_of_pii: bool = False
    free_of_adult_content: bool = False
    adjustment: bool = False
    pre_lambda_arn: str | None = None
    acs_lambda_arn: str | None = None
    kms_key_id: str | None = None

    def workteam(self) -> str:
        """The workteam ARN (``"public"`` expanded)."""
        return public_workteam_arn(self.region) if self.workteam_arn == "public" else self.workteam_arn


def build_request(settings: JobSettings) -> dict[str, Any]:
    """The ``CreateLabelingJob`` keyword arguments for ``settings`` (not validated: see ``validate_request``)."""
    s = settings
    pre, acs = lambda_arns(s.region, s.mode, s.adjustment) if s.region in REGION_ACCOUNTS else ("", "")
    workteam = s.workteam() if s.region in REGION_ACCOUNTS or s.workteam_arn != "public" else ""
    human: dict[str, Any] = {
        "WorkteamArn": workteam,
        "UiConfig": {"UiTemplateS3Uri": s.template_uri},
        "PreHumanTaskLambdaArn": s.pre_lambda_arn or pre,
        "TaskKeywords": list(s.keywords),
        "TaskTitle": s.title or default_title(s.labels, s.mode),
        "TaskDescription": s.description or f"Paint every object of these labels: {', '.join(s.labels)}"[:255],
        "NumberOfHumanWorkersPerDataObject": s.workers_per_object or (3 if s.mode == "semantic" else 1),
        "TaskTimeLimitInSeconds": s.task_time_limit,
        "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": s.acs_lambda_arn or acs},
    }
    if s.availability_lifetime is not None:
        human["TaskAvailabilityLifetimeInSeconds"] = s.availability_lifetime
    if s.max_concurrent_tasks is not None:
        human["MaxConcurrentTaskCount"] = s.max_concurrent_tasks
    if s.price_usd is not None:
        human["PublicWorkforceTaskPrice"] = {"AmountInUsd": price_amount(s.price_usd)}
    classifiers = [c for c, on in ((PII_FREE, s.free_of_pii), (ADULT_FREE, s.free_of_adult_content)) if on]
    input_config: dict[str, Any] = {"DataSource": {"S3DataSource": {"ManifestS3Uri": s.manifest_uri}}}
    if classifiers:
        input_config["DataAttributes"] = {"ContentClassifiers": classifiers}
    output_config: dict[str, Any] = {"S3OutputPath": s.output_path}
    if s.kms_key_id:
        output_config["KmsKeyId"] = s.kms_key_id
    request: dict[str, Any] = {
        "LabelingJobName": s.job_name,
        "LabelAttributeName": s.label_attribute,
        "InputConfig": input_config,
        "OutputConfig": output_config,
        "RoleArn": s.role_arn,
        "LabelCategoryConfigS3Uri": s.label_config_uri,
        "HumanTaskConfig": human,
    }
    stopping: dict[str, int] = {}
    if s.max_labeled_objects is not None:
        stopping["MaxHumanLabeledObjectCount"] = s.max_labeled_objects
    if s.max_percent_labeled is not None:
        stopping["MaxPercentageOfInputDatasetLabeled"] = s.max_percent_labeled
    if stopping:
        request["StoppingConditions"] = stopping
    if s.tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in s.tags.items()]
    return request


# ------------------------------------------------------------------------------------------- validation


@lru_cache(maxsize=1)
def _operation_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateLabelingJob")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _botocore_problems(request: Mapping[str, Any]) -> list[str]:
    """botocore's ParamValidator: required members, types, minimums, unknown members."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(dict(request), _operation_model().input_shape)
    problems: list[str] = []
    for kind, name, extra in report._errors:  # the report's structured form; its text form names fields too
        path = name.lstrip(".") or "(request)"
        if kind == "missing required field":
            where = f"{path}.{extra['required_name']}" if name else extra["required_name"]
            problems.append(f"{where}: missing; it is required by CreateLabelingJob")
        elif kind == "unknown field":
            problems.append(
                f"{path}.{extra['unknown_param']}: unknown member; valid members are {', '.join(extra['valid_names'])}"
                if name
                else f"{extra['unknown_param']}: unknown member; valid members are {', '.join(extra['valid_names'])}"
            )
        elif kind == "invalid type":
            types = "/".join(getattr(t, "__name__", str(t)) for t in extra["valid_types"])
            problems.append(f"{path}: value {_show(extra['param'])} has the wrong type; expected {types}")
        elif kind == "invalid range":
            problems.append(f"{path}: value {_show(extra['param'])} is below the minimum {extra['min_allowed']}")
        elif kind == "invalid length":
            problems.append(f"{path}: length {extra['param']} is below the minimum length {extra['min_allowed']}")
        else:
            problems.append(f"{path}: {kind} ({_show(extra)})")
    return problems


def _unicode_class_matcher(pattern: str) -> Callable[[str], bool] | None:
    """Java ``[\\p{L}\\p{Z}...]*`` character-class patterns (Tags), which Python's ``re`` lacks."""
    m = re.fullmatch(r"\(?\[(.*)\]\*\)?", pattern)
    if not m:
        return None
    body = m.group(1)
    categories = set(re.findall(r"\\p\{(\w)\}", body))
    rest = re.sub(r"\\p\{\w\}", "", body)
    literal = re.compile(f"[{rest}]") if rest else None
    return lambda value: all(
        unicodedata.category(ch)[0] in categories or (literal is not None and literal.fullmatch(ch) is not None)
        for ch in value
    )


def _java_dots(pattern: str) -> str:
    """``pattern`` with each bare ``.`` (outside ``[...]``, not escaped) made to exclude Java's line
    terminators, as ``.`` does in Java without DOTALL (Python's excludes only ``\\n``)."""
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == ".":
            out.append(f"[^{_JAVA_LINE_TERMINATORS}]")
            continue
        out.append(ch)
    return "".join(out)


@lru_cache(maxsize=64)
def _pattern_matcher(pattern: str) -> Callable[[str], bool] | None:
    if "\\p{" in pattern:
        return _unicode_class_matcher(pattern)
    try:
        compiled = re.compile(_java_dots(pattern))
    except re.error:
        return None  # a Java-only construct: botocore's model has none today besides \p{..}
    return lambda value: compiled.fullmatch(value) is not None


_HINTS = {
    "LabelingJobName": "; use letters, digits and single hyphens, starting and ending with a letter or digit",
    "LabelAttributeName": "; use letters, digits and single hyphens, e.g. 'label-ref'",
    "TaskKeywords": "; use letters and digits separated by single spaces (no hyphens or punctuation)",
    "RoleArn": "; give an IAM role ARN like arn:aws:iam::123456789012:role/GroundTruthRole",
    "WorkteamArn": "; give a workteam ARN like arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
    "TaskDescription": "; remove line breaks (newline, carriage return, U+0085, U+2028, U+2029): one line of text",
    "Key": "; use letters, digits, spaces and _ . : / = + - @",
    "Value": "; use letters, digits, spaces and _ . : / = + - @",
}


def _model_problems(value: Any, shape: Any, path: str, out: list[str]) -> None:
    """Maximums, patterns and enums of the model, which botocore's ParamValidator does not check."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                _model_problems(value[name], member, f"{path}.{name}" if path else name, out)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: {len(value)} items; at most {meta['max']} allowed")
        for i, item in enumerate(value):
            _model_problems(item, shape.member, f"{path}[{i}]", out)
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"{path}: value {_show(value)} has {len(value)} characters; at most {meta['max']} allowed")
        if "enum" in meta and value not in meta["enum"]:
            out.append(f"{path}: value {_show(value)} is not one of {', '.join(meta['enum'])}")
        matcher = _pattern_matcher(meta["pattern"]) if "pattern" in meta else None
        if matcher is not None and value and not matcher(value):
            hint = _HINTS.get(re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1], "")
            out.append(f"{path}: value {_show(value)} does not match the pattern {meta['pattern']}{hint}")
    elif kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        high = meta.get("max")
        if high is not None and value > high:
            out.append(f"{path}: value {value} is above the maximum {high}")


def _get(request: Mapping[str, Any], *path: str) -> Any:
    node: Any = request
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _job_kind(pre: str | None, acs: str | None) -> tuple[str | None, str | None]:
    """(task type, region) of AWS-owned Lambdas, e.g. ("SemanticSegmentation", "us-east-1"); Nones if custom."""
    for arn in (pre, acs):
        m = _AWS_LAMBDA.match(arn or "")
        if m and REGION_ACCOUNTS.get(m.group(1)) == m.group(2):
            return m.group(4), m.group(1)
    return None, None


def _ground_truth_problems(request: Mapping[str, Any], mode: Mode | None) -> list[str]:
    """Rules of Ground Truth that the service model cannot express (§3.2, §5.2-§5.5)."""
    problems: list[str] = []
    human = _get(request, "HumanTaskConfig") or {}
    pre = _get(human, "PreHumanTaskLambdaArn")
    acs = _get(human, "AnnotationConsolidationConfig", "AnnotationConsolidationLambdaArn")
    kind, _region = _job_kind(pre, acs)
    semantic = kind in ("SemanticSegmentation", "AdjustmentSemanticSegmentation") or (mode == "semantic")

    # AWS-owned Lambdas: right account for the region, PRE and ACS of the same type and region.
    for field_name, arn in (
        ("HumanTaskConfig.PreHumanTaskLambdaArn", pre),
        ("HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn", acs),
    ):
        m = _AWS_LAMBDA.match(arn or "")
        if m and m.group(1) in REGION_ACCOUNTS and REGION_ACCOUNTS[m.group(1)] != m.group(2):
            problems.append(
                f"{field_name}: value {_show(arn)} names account {m.group(2)}, but Ground Truth's Lambdas in "
                f"{m.group(1)} belong to {REGION_ACCOUNTS[m.group(1)]}"
            )
        if m and m.group(1) not in REGION_ACCOUNTS:
            problems.append(f"{field_name}: value {_show(arn)}: Ground Truth has no Lambdas in region {m.group(1)!r}")
    mp = _AWS_LAMBDA.match(pre) if isinstance(pre, str) else None
    ma = _AWS_LAMBDA.match(acs) if isinstance(acs, str) else None
    if mp and ma and (mp.group(4), mp.group(1)) != (ma.group(4), ma.group(1)):
        problems.append(
            f"HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn: value {_show(acs)} "
            f"does not pair with PreHumanTaskLambdaArn PRE-{mp.group(4)} in {mp.group(1)}; use ACS-{mp.group(4)} "
            "in the same region"
        )
    # AWS-owned Lambdas of another task type (a BoundingBox Lambda on a segmentation job, §5.3).
    allowed = {
        "semantic": SEMANTIC_TASK_TYPES,
        "instance": frozenset({"PassThrough"}),
        None: SEMANTIC_TASK_TYPES | {"PassThrough"},
    }[mode]
    for field_name, m in (
        ("HumanTaskConfig.PreHumanTaskLambdaArn", mp),
        ("HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn", ma),
    ):
        if m and m.group(4) not in allowed:
            job = {"semantic": "a semantic segmentation", "instance": "an instance segmentation (custom)"}.get(
                str(mode), "an image segmentation"
            )
            want = " or ".join(f"{m.group(3)}-{t}" for t in sorted(allowed))
            problems.append(
                f"{field_name}: value {_show(m.group(0))} is Ground Truth's {m.group(3)}-{m.group(4)} Lambda, "
                f"made for another task type; {job} job uses {want}"
            )
    if semantic and not pre:
        problems.append(
            "HumanTaskConfig.PreHumanTaskLambdaArn: missing; semantic segmentation needs PRE-SemanticSegmentation "
            "(gt_widget.groundtruth.request.lambda_arns gives the ARN for your region)"
        )
    if semantic and not acs:
        problems.append(
            "HumanTaskConfig.AnnotationConsolidationConfig: missing; semantic segmentation needs "
            "ACS-SemanticSegmentation (see lambda_arns)"
        )

    # Region consistency: Lambdas and workteam live in the job's region.
    regions = {}
    workteam = _get(human, "WorkteamArn")
    wm = _WORKTEAM.match(workteam or "") if isinstance(workteam, str) else None
    if wm and wm.group(1):
        regions["WorkteamArn"] = wm.group(1)
    for field_name, arn in (("PreHumanTaskLambdaArn", pre), ("AnnotationConsolidationLambdaArn", acs)):
        lm = _LAMBDA_REGION.match(arn or "") if isinstance(arn, str) else None
        if lm and lm.group(1):
            regions[field_name] = lm.group(1)
    if len(set(regions.values())) > 1:
        problems.append(
            "HumanTaskConfig: the workteam and Lambdas are in different regions ("
            + ", ".join(f"{k} in {v}" for k, v in regions.items())
            + "); use ARNs of the region the job runs in"
        )
    job_regions = sorted(set(regions.values()))
    for field_name, key in (
        ("OutputConfig.KmsKeyId", _get(request, "OutputConfig", "KmsKeyId")),
        (
            "LabelingJobAlgorithmsConfig.LabelingJobResourceConfig.VolumeKmsKeyId",
            _get(request, "LabelingJobAlgorithmsConfig", "LabelingJobResourceConfig", "VolumeKmsKeyId"),
        ),
    ):
        km = _KMS_REGION.match(key) if isinstance(key, str) else None
        if km and len(job_regions) == 1 and km.group(1) != job_regions[0]:
            problems.append(
                f"{field_name}: value {_show(key)} is a KMS key in {km.group(1)}, but the job runs in "
                f"{job_regions[0]} (its workteam and Lambdas); use a key of {job_regions[0]}: KMS keys are regional"
            )

    # One partition (aws, aws-cn, aws-us-gov...) for every ARN of the request.
    partitions: dict[str, str] = {}
    for field_name, arn in (
        ("RoleArn", _get(request, "RoleArn")),
        ("HumanTaskConfig.WorkteamArn", workteam),
        ("HumanTaskConfig.PreHumanTaskLambdaArn", pre),
        ("HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn", acs),
        ("HumanTaskConfig.UiConfig.HumanTaskUiArn", _get(human, "UiConfig", "HumanTaskUiArn")),
        ("OutputConfig.KmsKeyId", _get(request, "OutputConfig", "KmsKeyId")),
        ("OutputConfig.SnsTopicArn", _get(request, "OutputConfig", "SnsTopicArn")),
        (
            "InputConfig.DataSource.SnsDataSource.SnsTopicArn",
            _get(request, "InputConfig", "DataSource", "SnsDataSource", "SnsTopicArn"),
        ),
    ):
        pm = _PARTITION.match(arn) if isinstance(arn, str) else None
        if pm:
            partitions[field_name] = pm.group(1)
    if len(set(partitions.values())) > 1:
        counts = {p: list(partitions.values()).count(p) for p in partitions.values()}
        role = partitions.get("RoleArn")
        usual = max(counts, key=lambda p: (counts[p], p == role))  # the majority; the role's on a tie
        arns = {
            "RoleArn": _get(request, "RoleArn"),
            "HumanTaskConfig.WorkteamArn": workteam,
            "HumanTaskConfig.PreHumanTaskLambdaArn": pre,
            "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn": acs,
        }
        for field_name, partition in partitions.items():
            if partition != usual:
                shown = f"value {_show(arns[field_name])} " if field_name in arns else ""
                problems.append(
                    f"{field_name}: {shown}is in ARN partition {partition!r}, the request's other ARNs in "
                    f"{usual!r}; every ARN of a job must be in one partition (aws, aws-cn, aws-us-gov), the one "
                    "of the region the job runs in"
                )

    # Label attribute (§3.2).
    attr = _get(request, "LabelAttributeName")
    if isinstance(attr, str):
        if attr.endswith("-metadata"):
            problems.append(f"LabelAttributeName: value {attr!r} ends in '-metadata', which Ground Truth reserves")
        if semantic and not attr.endswith("-ref"):
            problems.append(
                f"LabelAttributeName: value {attr!r} must end in '-ref' for image semantic segmentation "
                f"(the output is a PNG reference); use {attr + '-ref'!r}"
            )
        custom = not semantic and (kind == "PassThrough" or mode == "instance")
        if custom and attr.endswith("-ref"):
            problems.append(
                f"LabelAttributeName: value {attr!r} must not end in '-ref' for a custom task such as instance "
                "segmentation (only image semantic segmentation writes a '-ref' PNG; DG sms-data-output, "
                f"reference §8); use {attr.removesuffix('-ref') or 'label'!r}"
            )
        if kind == "VerificationSemanticSegmentation" and attr.endswith("-ref"):
            problems.append(f"LabelAttributeName: value {attr!r} must not end in '-ref' for a verification job")

    # Label categories (§4): the built-in semantic segmentation Lambdas read the labels from this file.
    if semantic and not _get(request, "LabelCategoryConfigS3Uri"):
        problems.append(
            "LabelCategoryConfigS3Uri: missing; semantic segmentation reads its labels from a label category "
            "configuration file on S3 (gt_widget.groundtruth.labels.write_label_config writes one)"
        )

    # UI (§5.4): no built-in HumanTaskUiArn exists for image segmentation.
    ui = _get(human, "UiConfig")
    if isinstance(ui, Mapping):
        if "HumanTaskUiArn" in ui:
            problems.append(
                f"HumanTaskConfig.UiConfig.HumanTaskUiArn: value {_show(ui['HumanTaskUiArn'])}: there is no "
                "built-in worker UI for image segmentation; give UiTemplateS3Uri (a template with "
                "<crowd-semantic-segmentation> or <crowd-instance-segmentation>) instead"
            )
        if not ui.get("UiTemplateS3Uri"):
            problems.append(
                "HumanTaskConfig.UiConfig.UiTemplateS3Uri: missing; image segmentation needs a worker task "
                "template on S3 (`gt-widget template builtin semantic` writes one)"
            )

    # Time limits (§5.2).
    limit = _get(human, "TaskTimeLimitInSeconds")
    if isinstance(limit, int) and limit > MAX_TASK_TIME_LIMIT:
        problems.append(
            f"HumanTaskConfig.TaskTimeLimitInSeconds: value {limit} is above the maximum {MAX_TASK_TIME_LIMIT} "
            "(8 hours) for image and custom jobs"
        )
    public = isinstance(workteam, str) and is_public_workteam(workteam)
    lifetime = _get(human, "TaskAvailabilityLifetimeInSeconds")
    max_life = MAX_AVAILABILITY_PUBLIC if public else MAX_AVAILABILITY_PRIVATE
    if isinstance(lifetime, int) and lifetime > max_life:
        problems.append(
            f"HumanTaskConfig.TaskAvailabilityLifetimeInSeconds: value {lifetime} is above the maximum {max_life} "
            f"for a {'public (Mechanical Turk)' if public else 'private or vendor'} workforce"
        )
    if isinstance(limit, int) and isinstance(lifetime, int) and lifetime < limit:
        problems.append(
            f"HumanTaskConfig.TaskAvailabilityLifetimeInSeconds: value {lifetime} is shorter than "
            f"TaskTimeLimitInSeconds {limit}; a task must stay available at least as long as a worker may take"
        )

    # Public workforce (§5.5): a price and the no-PII declaration, and only then.
    price = _get(human, "PublicWorkforceTaskPrice")
    classifiers = _get(request, "InputConfig", "DataAttributes", "ContentClassifiers") or []
    if public:
        if price is None:
            problems.append(
                "HumanTaskConfig.PublicWorkforceTaskPrice: missing; the public (Mechanical Turk) workteam needs a "
                f"price per task, e.g. price_usd='{'0.840' if semantic else '0.036'}'"
            )
        if PII_FREE not in classifiers:
            problems.append(
                f"InputConfig.DataAttributes.ContentClassifiers: value {_show(list(classifiers))} lacks {PII_FREE}; "
                "the public workteam may only see data you declare free of personal information"
            )
    elif price is not None and workteam:
        problems.append(
            "HumanTaskConfig.PublicWorkforceTaskPrice: given for a private or vendor workteam; remove it "
            "(only the public workteam is paid per task)"
        )
    if isinstance(price, Mapping):
        amount = price.get("AmountInUsd") or {}
        if isinstance(amount, Mapping) and not any(
            amount.get(k) for k in ("Dollars", "Cents", "TenthFractionsOfACent")
        ):
            problems.append("HumanTaskConfig.PublicWorkforceTaskPrice.AmountInUsd: value is $0; set a price per task")
        elif isinstance(amount, Mapping) and all(
            isinstance(amount.get(k, 0), int) for k in ("Dollars", "Cents", "TenthFractionsOfACent")
        ):
            usd = (
                Decimal(amount.get("Dollars", 0))
                + Decimal(amount.get("Cents", 0)) / 100
                + Decimal(amount.get("TenthFractionsOfACent", 0)) / 1000
            )
            table = public_price_table("semantic" if semantic else "instance")
            if usd not in table:
                task = "semantic segmentation" if semantic else "custom (e.g. instance segmentation)"
                problems.append(
                    f"HumanTaskConfig.PublicWorkforceTaskPrice.AmountInUsd: value ${usd:.3f} is not a price the "
                    f"public workforce accepts for {task} tasks; use one of {', '.join(f'{p:.3f}' for p in table)} "
                    "(botocore's PublicWorkforceTaskPrice documentation)"
                )

    # Tags: unique keys, the aws: prefix is reserved.
    tags = _get(request, "Tags")
    if isinstance(tags, list):
        keys = [t.get("Key") for t in tags if isinstance(t, Mapping)]
        for i, key in enumerate(keys):
            if isinstance(key, str) and key.lower().startswith("aws:"):
                problems.append(f"Tags[{i}].Key: value {key!r} starts with 'aws:', which AWS reserves")
            if key in keys[:i]:
                problems.append(f"Tags[{i}].Key: value {key!r} appears twice; tag keys must be unique")
    return problems


def request_problems(request: Any, *, mode: Mode | None = None) -> list[str]:
    """Every problem of a ``CreateLabelingJob`` request, one line each naming the field (empty = valid)."""
    if not isinstance(request, Mapping):
        return [f"(request): must be a JSON object of CreateLabelingJob arguments, got {type(request).__name__}"]
    problems = _botocore_problems(request)
    model: list[str] = []
    _model_problems(request, _operation_model().input_shape, "", model)
    problems.extend(model)
    problems.extend(_ground_truth_problems(request, mode))
    seen: set[str] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def validate_request(request: Any, *, mode: Mode | None = None) -> dict[str, Any]:
    """``request`` unchanged when valid, else ``ValidationError`` listing every problem."""
    problems = request_problems(request, mode=mode)
    if problems:
        raise ValidationError(problems)
    return dict(request)


def describe_problems(problems: Sequence[str]) -> str:
    """Problems as a numbered block for notebooks and logs."""
    return "\n".join(f"{i + 1}. {p}" for i, p in enumerate(problems))
