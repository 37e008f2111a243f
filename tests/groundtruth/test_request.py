"""CreateLabelingJob requests: built per Ground Truth's rules, validated against botocore's model and beyond."""

from __future__ import annotations

import copy
import re
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from gt_widget.errors import ValidationError
from gt_widget.groundtruth.request import (
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
