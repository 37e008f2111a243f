"""CreateLabelingJob requests: built per Ground Truth's rules, validated against botocore's model and beyond."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber
from PIL import Image

from gt_widget.errors import ValidationError
from gt_widget.groundtruth.request import (
    MAX_IMAGE_BYTES,
    PUBLIC_PRICES_USD,
    REGION_ACCOUNTS,
    JobSettings,
    build_request,
    lambda_arns,
    price_amount,
    public_workteam_arn,
    request_problems,
    validate_request,
)
from tests.groundtruth.conftest import check_golden_json

PRIVATE = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"


def settings(**overrides: Any) -> JobSettings:
    base: dict[str, Any] = {
        "job_name": "pets-2024",
        "labels": ["cat", "dog"],
        "role_arn": "arn:aws:iam::123456789012:role/GroundTruth",
        "manifest_uri": "s3://bucket/gt/pets-2024/input.manifest",
        "output_path": "s3://bucket/gt/output/",
        "template_uri": "s3://bucket/gt/pets-2024/template.liquid.html",
        "label_config_uri": "s3://bucket/gt/pets-2024/label-categories.json",
        "workteam_arn": PRIVATE,
    }
    base.update(overrides)
    return JobSettings(**base)


def problems_of(request: dict[str, Any]) -> list[str]:
    return request_problems(request)


def test_semantic_request_golden_and_valid() -> None:
    request = build_request(settings(tags={"project": "pets"}, max_labeled_objects=100))
    assert problems_of(request) == []
    check_golden_json("request_semantic.json", request)
    human = request["HumanTaskConfig"]
    assert human["PreHumanTaskLambdaArn"] == "arn:aws:lambda:us-east-1:432418664414:function:PRE-SemanticSegmentation"
    assert human["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"].endswith(
        ":ACS-SemanticSegmentation"
    )
    assert human["UiConfig"] == {"UiTemplateS3Uri": "s3://bucket/gt/pets-2024/template.liquid.html"}
    assert human["NumberOfHumanWorkersPerDataObject"] == 3


def test_instance_request_uses_passthrough_and_public_price() -> None:
    request = build_request(
        settings(
            mode="instance",
            region="eu-west-1",
            workteam_arn="public",
            price_usd="0.036",
            free_of_pii=True,
            label_attribute="pets",
        )
    )
    assert problems_of(request) == []
    check_golden_json("request_instance_public.json", request)
    human = request["HumanTaskConfig"]
    assert human["WorkteamArn"] == "arn:aws:sagemaker:eu-west-1:394669845002:workteam/public-crowd/default"
    assert human["PreHumanTaskLambdaArn"] == "arn:aws:lambda:eu-west-1:568282634449:function:PRE-PassThrough"
    assert human["PublicWorkforceTaskPrice"] == {"AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}}
    assert request["InputConfig"]["DataAttributes"] == {
        "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]
    }
    assert human["NumberOfHumanWorkersPerDataObject"] == 1


def test_adjustment_lambdas() -> None:
    pre, acs = lambda_arns("ap-south-1", "semantic", adjustment=True)
    assert pre == "arn:aws:lambda:ap-south-1:565803892007:function:PRE-AdjustmentSemanticSegmentation"
    assert acs == "arn:aws:lambda:ap-south-1:565803892007:function:ACS-AdjustmentSemanticSegmentation"


def test_region_table_matches_botocores_documentation() -> None:
    """Every ARN botocore's docs list for our task types is the one lambda_arns builds (and vice versa)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    human = model.operation_model("CreateLabelingJob").input_shape.members["HumanTaskConfig"]
    docs = human.members["PreHumanTaskLambdaArn"].documentation
    acs_docs = human.members["AnnotationConsolidationConfig"].members["AnnotationConsolidationLambdaArn"].documentation
    for kind, adjustment, name in [
        ("semantic", False, "SemanticSegmentation"),
        ("semantic", True, "AdjustmentSemanticSegmentation"),
        ("instance", False, "PassThrough"),
    ]:
        listed = set(re.findall(rf"arn:aws:lambda:([a-z0-9-]+):(\d{{12}}):function:PRE-{name}\b", docs))
        assert listed == set(REGION_ACCOUNTS.items()), name
        listed_acs = set(re.findall(rf"arn:aws:lambda:([a-z0-9-]+):(\d{{12}}):function:ACS-{name}\b", acs_docs))
        assert listed_acs == set(REGION_ACCOUNTS.items()), name
        for region in REGION_ACCOUNTS:
            pre, acs = lambda_arns(region, kind, adjustment)  # type: ignore[arg-type]
            assert pre in docs and acs in acs_docs


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValidationError, match="us-east-1"):
        lambda_arns("mars-north-1")
    with pytest.raises(ValidationError, match="region"):
        public_workteam_arn("mars-north-1")


@pytest.mark.parametrize(
    ("usd", "expected"),
    [("0.036", (0, 3, 6)), ("1.2", (1, 20, 0)), ("0", (0, 0, 0)), ("2.999", (2, 99, 9))],
)
def test_price_amount(usd: str, expected: tuple[int, int, int]) -> None:
    assert tuple(price_amount(usd).values()) == expected


@pytest.mark.parametrize("usd", ["0.0361", "-1", "abc"])
def test_bad_prices(usd: str) -> None:
    with pytest.raises(ValidationError, match="price"):
        price_amount(usd)


def _mutate(path: str, value: Any) -> dict[str, Any]:
    request = copy.deepcopy(build_request(settings()))
    node = request
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return request


_DELETE = object()

# (field path, bad value, the problem must name this field, and contain this text)
CASES = [
    # botocore's ParamValidator: required, types, minimums, unknown members
    ("RoleArn", _DELETE, "RoleArn", "required"),
    ("HumanTaskConfig.TaskTitle", "", "HumanTaskConfig.TaskTitle", "minimum length 1"),
    ("HumanTaskConfig.TaskTimeLimitInSeconds", 29, "HumanTaskConfig.TaskTimeLimitInSeconds", "minimum 30"),
    (
        "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
        "3",
        "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
        "type",
    ),
    ("HumanTaskConfig.Bogus", 1, "HumanTaskConfig.Bogus", "unknown member"),
    # the model's maximums / patterns / enums, which botocore does not check
    (
        "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
        10,
        "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
        "maximum 9",
    ),
    ("HumanTaskConfig.TaskKeywords", ["Semantic-Segmentation"], "HumanTaskConfig.TaskKeywords[0]", "pattern"),
    ("HumanTaskConfig.TaskKeywords", ["a", "b", "c", "d", "e", "f"], "HumanTaskConfig.TaskKeywords", "at most 5"),
    ("HumanTaskConfig.TaskTitle", "t" * 129, "HumanTaskConfig.TaskTitle", "at most 128"),
    ("HumanTaskConfig.TaskDescription", "d" * 256, "HumanTaskConfig.TaskDescription", "at most 255"),
    ("LabelingJobName", "pets_2024", "LabelingJobName", "pattern"),
    ("LabelingJobName", "p" * 64, "LabelingJobName", "at most 63"),
    ("RoleArn", "arn:aws:iam::12345:role/x" + "y" * 5, "RoleArn", "pattern"),
    (
        "HumanTaskConfig.WorkteamArn",
        "arn:aws:sagemaker:us-east-1:123:workteam/x",
        "HumanTaskConfig.WorkteamArn",
        "pattern",
    ),
    (
        "InputConfig.DataAttributes",
        {"ContentClassifiers": ["FreeOfAds"]},
        "InputConfig.DataAttributes.ContentClassifiers[0]",
        "not one of",
    ),
    ("OutputConfig.S3OutputPath", "ftp://bucket/out", "OutputConfig.S3OutputPath", "pattern"),
    ("Tags", [{"Key": "a<b", "Value": "v"}], "Tags[0].Key", "pattern"),
    # Ground Truth's rules the model cannot express
    ("LabelAttributeName", "pets", "LabelAttributeName", "must end in '-ref'"),
    ("LabelAttributeName", "pets-metadata", "LabelAttributeName", "'-metadata'"),
    (
        "HumanTaskConfig.UiConfig",
        {"HumanTaskUiArn": "arn:aws:sagemaker:us-east-1:394669845002:human-task-ui/SemanticSegmentation"},
        "HumanTaskConfig.UiConfig.HumanTaskUiArn",
        "no built-in worker UI",
    ),
    ("HumanTaskConfig.UiConfig", {}, "HumanTaskConfig.UiConfig.UiTemplateS3Uri", "missing"),
    ("HumanTaskConfig.TaskTimeLimitInSeconds", 28_801, "HumanTaskConfig.TaskTimeLimitInSeconds", "maximum 28800"),
    (
        "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds",
        31 * 24 * 3600,
        "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds",
        "maximum 2592000",
    ),
    (
        "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds",
        300,
        "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds",
        "shorter than",
    ),
    (
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "arn:aws:lambda:us-east-1:111111111111:function:PRE-SemanticSegmentation",
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "belong to 432418664414",
    ),
    (
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox",
        "HumanTaskConfig.AnnotationConsolidationConfig",
        "does not pair",
    ),
    (
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "arn:aws:lambda:eu-west-1:568282634449:function:PRE-SemanticSegmentation",
        "HumanTaskConfig",
        "different regions",
    ),
    (
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        _DELETE,
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "PRE-SemanticSegmentation",
    ),
    (
        "HumanTaskConfig.PublicWorkforceTaskPrice",
        {"AmountInUsd": {"Cents": 3}},
        "HumanTaskConfig.PublicWorkforceTaskPrice",
        "private",
    ),
    ("Tags", [{"Key": "aws:owner", "Value": "x"}], "Tags[0].Key", "reserves"),
    ("LabelCategoryConfigS3Uri", _DELETE, "LabelCategoryConfigS3Uri", "label category configuration"),
    ("Tags", [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}], "Tags[1].Key", "twice"),
    # the rules the first audit found missing (issue 12)
    (
        "OutputConfig.KmsKeyId",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "OutputConfig.KmsKeyId",
        "KMS key in eu-west-1, but the job runs in us-east-1",
    ),
    ("RoleArn", "arn:aws-cn:iam::123456789012:role/GroundTruth", "RoleArn", "is in ARN partition 'aws-cn'"),
    (
        "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn",
        "arn:aws:lambda:us-east-1:432418664414:function:ACS-BoundingBox",
        "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn",
        "ACS-BoundingBox Lambda, made for another task type",
    ),
    (
        "HumanTaskConfig.TaskDescription",
        "Paint every cat\u2028and every dog",
        "HumanTaskConfig.TaskDescription",
        "remove line breaks",
    ),
    ("HumanTaskConfig.TaskDescription", "Paint\rcats", "HumanTaskConfig.TaskDescription", "remove line breaks"),
]


@pytest.mark.parametrize(("path", "value", "field", "text"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_each_rule_names_field_value_and_rule(path: str, value: Any, field: str, text: str) -> None:
    problems = problems_of(_mutate(path, value))
    hits = [p for p in problems if p.startswith(field) and text in p]
    assert hits, f"no problem naming {field!r} with {text!r}: {problems}"
    if (
        text != "unknown member"
        and value is not _DELETE
        and isinstance(value, (str, int))
        and not isinstance(value, bool)
        and len(str(value)) < 60
        and str(value).isprintable()
    ):
        assert any(str(value) in p for p in hits), hits  # the value is shown


def test_public_workteam_needs_price_and_pii_declaration() -> None:
    request = build_request(settings(workteam_arn="public"))
    problems = problems_of(request)
    assert any(p.startswith("HumanTaskConfig.PublicWorkforceTaskPrice: missing") for p in problems)
    assert any(
        p.startswith("InputConfig.DataAttributes.ContentClassifiers") and "FreeOfPersonally" in p for p in problems
    )
    request = build_request(settings(workteam_arn="public", price_usd="0.0", free_of_pii=True))
    assert any("$0" in p for p in problems_of(request))


def test_public_availability_limit() -> None:
    request = build_request(
        settings(workteam_arn="public", price_usd="0.05", free_of_pii=True, availability_lifetime=43_201)
    )
    assert any("maximum 43200" in p and "public" in p for p in problems_of(request))


def test_botocore_itself_lets_these_through() -> None:
    """The reason the extra checks exist (§5.2): botocore's client-side validation accepts them."""
    from botocore.validate import ParamValidator

    request = _mutate("HumanTaskConfig.NumberOfHumanWorkersPerDataObject", 10)
    request["HumanTaskConfig"]["TaskKeywords"] = ["Semantic-Segmentation"]
    shape = (
        botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateLabelingJob").input_shape
    )
    assert not ParamValidator().validate(request, shape).has_errors()
    assert len(problems_of(request)) == 2


def test_validate_request_fails_before_any_aws_call() -> None:
    client = botocore.session.get_session().create_client("sagemaker", region_name="us-east-1")
    bad = _mutate("LabelAttributeName", "pets")
    with Stubber(client) as stub:  # nothing queued: any call would raise
        with pytest.raises(ValidationError) as info:
            validate_request(bad)
            client.create_labeling_job(**bad)
        stub.assert_no_pending_responses()
    assert "LabelAttributeName" in str(info.value)


def test_non_object_request() -> None:
    assert problems_of(["x"]) == ["(request): must be a JSON object of CreateLabelingJob arguments, got list"]  # type: ignore[arg-type]


def _public(mode: str, usd: str) -> list[str]:
    request = build_request(
        settings(mode=mode, workteam_arn="public", price_usd=usd, free_of_pii=True, label_attribute="pets")
        if mode == "instance"
        else settings(workteam_arn="public", price_usd=usd, free_of_pii=True)
    )
    return [p for p in problems_of(request) if "PublicWorkforceTaskPrice" in p]


def test_public_price_must_be_in_the_task_types_table() -> None:
    """Semantic segmentation: 0.840-1.200 only; custom tasks (instance): 0.012-1.200 (botocore's docs)."""
    problems = _public("semantic", "0.036")
    assert problems and problems[0].startswith("HumanTaskConfig.PublicWorkforceTaskPrice.AmountInUsd: value $0.036")
    assert "0.840, 0.960, 1.080, 1.200" in problems[0]
    for usd in ("0.840", "0.96", "1.2"):
        assert _public("semantic", usd) == [], usd
    assert _public("instance", "0.036") == []
    assert "0.012" in _public("instance", "0.050")[0]
    missing = problems_of(build_request(settings(workteam_arn="public", free_of_pii=True)))
    assert any("price_usd='0.840'" in p for p in missing)  # our own hint is a price AWS accepts


def test_price_tables_are_botocores() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    doc = re.sub(r"<[^>]+>", " ", model.shape_for("PublicWorkforceTaskPrice").documentation)

    def listed(after: str) -> set[Decimal]:
        tail = doc.split(after, 1)[1].split("Use one of", 1)[0]
        return {Decimal(v) for v in re.findall(r"\d+\.\d{3}", tail)}

    assert set(PUBLIC_PRICES_USD["semantic"]) == listed("for semantic segmentation tasks")
    assert set(PUBLIC_PRICES_USD["custom"]) == listed("text classification, and custom tasks")


def test_default_title_with_an_emoji_label_is_valid() -> None:
    request = build_request(settings(labels=["cat 🐱", "dog"]))
    assert request["HumanTaskConfig"]["TaskTitle"] == "Image semantic segmentation: cat, dog"
    assert problems_of(request) == []
    explicit = build_request(settings(title="Cats 🐱"))
    assert any(p.startswith("HumanTaskConfig.TaskTitle") and "pattern" in p for p in problems_of(explicit))


def test_u2028_passes_pythons_dot_but_not_javas() -> None:
    assert re.fullmatch(".+", "a\u2028b")  # why the model's pattern alone was not enough
    request = _mutate("HumanTaskConfig.TaskDescription", "one\u2029two")
    assert any(p.startswith("HumanTaskConfig.TaskDescription") for p in problems_of(request))
    assert problems_of(_mutate("HumanTaskConfig.TaskDescription", "Paint cats · dogs — 🐱 ok")) == []


def test_lambdas_of_the_other_segmentation_kind_are_refused() -> None:
    pre, acs = lambda_arns("us-east-1", "instance")
    request = _mutate("HumanTaskConfig.PreHumanTaskLambdaArn", pre)
    request["HumanTaskConfig"]["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"] = acs
    problems = request_problems(request, mode="semantic")
    assert any(p.startswith("HumanTaskConfig.PreHumanTaskLambdaArn") and "PRE-PassThrough" in p for p in problems)
    semantic = build_request(settings())
    problems = request_problems(semantic, mode="instance")
    assert any("PRE-SemanticSegmentation Lambda, made for another task type" in p for p in problems)


def test_kms_key_ids_without_a_region_and_same_region_keys_pass() -> None:
    for key in ("1234abcd-12ab-34cd-56ef-1234567890ab", "alias/gt", "arn:aws:kms:us-east-1:123456789012:key/abc"):
        assert problems_of(build_request(settings(kms_key_id=key))) == [], key


def test_one_partition_for_every_arn() -> None:
    request = _mutate("RoleArn", "arn:aws-cn:iam::123456789012:role/GroundTruth")
    problems = [p for p in problems_of(request) if "partition" in p]
    assert [p.split(":", 1)[0] for p in problems] == ["RoleArn"]  # the odd one out, not the three aws ARNs
    request = build_request(settings(pre_lambda_arn="arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:pre"))
    problems = [p for p in problems_of(request) if "partition" in p]
    assert [p.split(":", 1)[0] for p in problems] == ["HumanTaskConfig.PreHumanTaskLambdaArn"]


def _bundle(tmp_path: Path, labels: list[str], image: Path) -> list[str]:
    from gt_widget.groundtruth.bundle import build_bundle

    return build_bundle(
        labels=labels,
        mode="semantic",
        sources=[str(image)],
        s3_prefix="s3://bucket/gt",
        role_arn="arn:aws:iam::123456789012:role/GroundTruth",
        workteam_arn=PRIVATE,
        job_name="pets-2024",
        base_dir=tmp_path,
    ).problems


def test_images_over_40_mb_are_refused_by_name(tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 8)).save(small)
    assert _bundle(tmp_path, ["cat"], small) == []
    big = tmp_path / "big.tif"
    with big.open("wb") as f:  # a sparse file: the quota is on bytes, which is all the rule reads
        f.truncate(MAX_IMAGE_BYTES + 1)
    problems = _bundle(tmp_path, ["cat"], big)
    assert len(problems) == 1 and problems[0].startswith("manifest line 1 source-ref:")
    assert "big.tif" in problems[0] and "at most 40 MB" in problems[0]


def test_a_label_named_background_is_accepted_but_not_BACKGROUND(tmp_path: Path) -> None:
    """Ground Truth's index 0 is the class "BACKGROUND" (unlabeled pixels); a real job had a "Background"
    class beside it (reference §8), so only the exact reserved name is refused."""
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    assert _bundle(tmp_path, ["Background", "cat"], img) == []
    with pytest.raises(ValidationError, match="reserved for unlabeled pixels"):
        _bundle(tmp_path, ["BACKGROUND"], img)


def test_custom_instance_jobs_refuse_a_ref_attribute(tmp_path: Path) -> None:
    request = build_request(settings(mode="instance", label_attribute="label-ref"))
    problems = [p for p in problems_of(request) if p.startswith("LabelAttributeName")]
    assert len(problems) == 1 and "must not end in '-ref'" in problems[0] and "'label'" in problems[0]
    from gt_widget.groundtruth.bundle import build_bundle

    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    bundle = build_bundle(
        labels=["cat"],
        mode="instance",
        sources=[str(img)],
        s3_prefix="s3://bucket/gt",
        role_arn="arn:aws:iam::123456789012:role/GroundTruth",
        workteam_arn=PRIVATE,
        job_name="pets-2024",
        base_dir=tmp_path,
    )
    assert bundle.request["LabelAttributeName"] == "label" and bundle.problems == []
