"""Every brand field constraint has a failing case with the exact message a user sees."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from recplat.brand import Brand, BrandFileError, Environment, parse_brand

VALID: dict[str, Any] = {
    "name": "acme",
    "display_name": "Acme",
    "owner": "recs@acme.example.com",
    "cost_center": "CC-42",
    "environments": ["dev", "prod"],
    "serving": {
        "replicas": {"min": 2, "max": 4},
        "cpu": "500m",
        "memory": "512Mi",
        "latency_slo_ms": 50,
        "max_candidates": 200,
        "challenger_traffic": 0.1,
    },
    "training": {
        "schedule": "0 3 * * *",
        "lookback_days": 28,
        "lightgbm": {"num_leaves": 31, "learning_rate": 0.05},
        "promotion": {"metric": "ndcg@10", "min_gain": 0.01},
        "workers": 0,
    },
}


def with_value(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def problems(data: Any) -> list[str]:
    with pytest.raises(BrandFileError) as caught:
        parse_brand(yaml.safe_dump(data), "brands/acme.yaml", stem="acme")
    return [str(problem) for problem in caught.value.problems]


def test_valid_brand_parses() -> None:
    brand = parse_brand(yaml.safe_dump(VALID), "brands/acme.yaml", stem="acme")
    assert brand.serving.replicas.max == 4
    assert brand.environments == [Environment.DEV, Environment.PROD]


CASES = [
    (
        "name",
        "Acme",
        "name: a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), "
        "starting with a letter, got 'Acme'",
    ),
    (
        "name",
        "ab",
        "name: a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), "
        "starting with a letter, got 'ab'",
    ),
    (
        "name",
        "a" * 25,
        "name: a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), "
        f"starting with a letter, got '{'a' * 25}'",
    ),
    (
        "name",
        "acme-",
        "name: a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), "
        "starting with a letter, got 'acme-'",
    ),
    (
        "name",
        "ab--cd",
        "name: a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), "
        "starting with a letter, got 'ab--cd'",
    ),
    ("display_name", "", "display_name: at least 1 item(s), got ''"),
    ("display_name", "x" * 65, f"display_name: at most 64 character(s), got '{'x' * 57}...'"),
    ("owner", "not-an-email", "owner: an email address, got 'not-an-email'"),
    ("cost_center", "cc 1", "cost_center: 1-32 letters, digits, '-' or '_', got 'cc 1'"),
    ("environments", [], "environments: at least 1 item(s), got a list of 0"),
    ("environments", ["staging"], "environments.0: one of 'dev' or 'prod', got 'staging'"),
    ("environments", ["dev", "dev"], "environments: each environment listed once, got a list of 2"),
    ("serving.replicas.min", 0, "serving.replicas.min: a number >= 1, got 0"),
    ("serving.replicas.max", 1, "serving.replicas.max: must be >= min (2), got 1"),
    ("serving.replicas.max", 201, "serving.replicas.max: a number <= 200, got 201"),
    ("serving.cpu", "lots", "serving.cpu: a Kubernetes CPU quantity such as 500m or 2, got 'lots'"),
    (
        "serving.memory",
        "1GB",
        "serving.memory: a Kubernetes memory quantity such as 512Mi or 2Gi, got '1GB'",
    ),
    ("serving.latency_slo_ms", 1, "serving.latency_slo_ms: a number >= 5, got 1"),
    ("serving.latency_slo_ms", "fast", "serving.latency_slo_ms: an integer, got 'fast'"),
    ("serving.max_candidates", 0, "serving.max_candidates: a number >= 1, got 0"),
    ("serving.max_candidates", 2001, "serving.max_candidates: a number <= 2000, got 2001"),
    ("serving.challenger_traffic", 0.6, "serving.challenger_traffic: a number <= 0.5, got 0.6"),
    ("serving.challenger_traffic", -0.1, "serving.challenger_traffic: a number >= 0.0, got -0.1"),
    (
        "training.schedule",
        "daily",
        "training.schedule: a 5-field cron expression such as '0 3 * * *', got 'daily'",
    ),
    (
        "training.schedule",
        "0 25 * * *",
        "training.schedule: a cron hour between 0 and 23, got '0 25 * * *'",
    ),
    ("training.lookback_days", 0, "training.lookback_days: a number >= 1, got 0"),
    ("training.lightgbm.num_leaves", 1, "training.lightgbm.num_leaves: a number >= 2, got 1"),
    (
        "training.lightgbm.learning_rate",
        0,
        "training.lightgbm.learning_rate: a number > 0.0, got 0",
    ),
    (
        "training.lightgbm.feature_fraction",
        1.5,
        "training.lightgbm.feature_fraction: a number <= 1.0, got 1.5",
    ),
    (
        "training.lightgbm.num_boost_round",
        0,
        "training.lightgbm.num_boost_round: a number >= 1, got 0",
    ),
    (
        "training.lightgbm.min_data_in_leaf",
        0,
        "training.lightgbm.min_data_in_leaf: a number >= 1, got 0",
    ),
    (
        "training.lightgbm.early_stopping_rounds",
        0,
        "training.lightgbm.early_stopping_rounds: a number >= 1, got 0",
    ),
    (
        "training.lightgbm.boosting",
        "dart",
        "training.lightgbm.boosting: no such key (remove it or check its spelling), got 'boosting'",
    ),
    (
        "training.promotion.metric",
        "auc",
        "training.promotion.metric: one of 'ndcg@5', 'ndcg@10', 'map@10' or 'mrr', got 'auc'",
    ),
    ("training.promotion.min_gain", -1, "training.promotion.min_gain: a number >= 0.0, got -1"),
    ("training.workers", 65, "training.workers: a number <= 64, got 65"),
    (
        "training.cpu",
        "1 core",
        "training.cpu: a Kubernetes CPU quantity such as 500m or 2, got '1 core'",
    ),
    ("serving.replicas", [1, 2], "serving.replicas: a mapping, got a list of 2"),
    ("colour", "blue", "colour: no such key (remove it or check its spelling), got 'colour'"),
]


@pytest.mark.parametrize(("path", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_field_constraint_message(path: str, value: Any, message: str) -> None:
    assert problems(with_value(path, value)) == [f"brands/acme.yaml: {message}"]


def test_missing_required_fields_are_each_named() -> None:
    data = {"name": "acme"}
    assert problems(data) == [
        f"brands/acme.yaml: {field}: a value (this field is required), got nothing"
        for field in ("display_name", "owner", "cost_center", "environments")
    ]


def test_name_must_equal_file_stem() -> None:
    with pytest.raises(BrandFileError) as caught:
        parse_brand(yaml.safe_dump(VALID), "brands/other.yaml", stem="other")
    assert [str(p) for p in caught.value.problems] == [
        "brands/other.yaml: name: the file's stem 'other' (rename one), got 'acme'"
    ]


def test_overrides_merge_over_base_and_keep_the_rest() -> None:
    data = with_value("overrides", {"prod": {"serving": {"replicas": {"min": 3, "max": 9}}}})
    brand = Brand.model_validate(data)
    prod = brand.for_environment("prod")
    assert (prod.serving.replicas.min, prod.serving.replicas.max) == (3, 9)
    assert prod.serving.cpu == "500m"
    assert brand.for_environment("dev").serving.replicas.max == 4


def test_merged_override_is_validated_again() -> None:
    data = with_value("overrides", {"prod": {"serving": {"replicas": {"max": 1}}}})
    assert problems(data) == [
        "brands/acme.yaml: overrides.prod.serving.replicas.max: must be >= min (2), got 1"
    ]


def test_override_of_unknown_section_is_an_error() -> None:
    data = with_value("overrides", {"prod": {"owner": "x@y.com"}})
    assert problems(data) == [
        "brands/acme.yaml: overrides.prod.owner: no such key (remove it or check its spelling), "
        "got 'owner'"
    ]


def test_override_for_unknown_environment_is_an_error() -> None:
    data = with_value("overrides", {"staging": {"serving": {"cpu": "1"}}})
    assert problems(data) == [
        "brands/acme.yaml: overrides.staging.[key]: one of 'dev' or 'prod', got 'staging'"
    ]
