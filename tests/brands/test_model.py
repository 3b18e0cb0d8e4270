"""Every brand field constraint has a failing case with the exact message a user sees."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
import yaml
from ranking_features.brand import Brand, BrandFileError, Environment, parse_brand

pytestmark = pytest.mark.fast

VALID: dict[str, Any] = {
    "name": "acme",
    "display_name": "Acme",
    "owner": "recs@acme-brands.com",
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
    (
        "display_name",
        "Acme\x85News",
        "display_name: printable text (no control characters or line breaks), got 'Acme\\x85News'",
    ),
    (
        "owner",
        "not-an-email",
        "owner: an email address (must have an @-sign), got 'not-an-email'",
    ),
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
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (numbers, '*', ',', '-' "
        "and '/' only), got 'daily'",
    ),
    (
        "training.schedule",
        "0 25 * * *",
        "training.schedule: a 5-field cron expression such as '0 3 * * *' (bad hour), "
        "got '0 25 * * *'",
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


def text_problems(text: str, stem: str = "acme") -> list[str]:
    with pytest.raises(BrandFileError) as caught:
        parse_brand(text, f"brands/{stem}.yaml", stem=stem)
    return [str(problem) for problem in caught.value.problems]


VALID_TEXT = """\
name: acme
display_name: Acme
owner: recs@acme-brands.com
cost_center: CC-42
environments: [dev, prod]
serving:
  replicas: {min: 2, max: 4}
  cpu: 500m
training:
  workers: 0
"""


# Issue 20, finding 6: a second block silently replaced the first.
def test_duplicate_top_level_key_names_both_lines() -> None:
    text = VALID_TEXT + "serving:\n  cpu: 250m\n"
    assert text_problems(text) == [
        "brands/acme.yaml:11: serving: each key once (first at line 6; merge the two), "
        "got 'serving' again"
    ]


def test_duplicate_nested_key_is_named_by_its_path() -> None:
    text = VALID_TEXT.replace("  cpu: 500m\n", "  cpu: 500m\n  memory: 1Gi\n  cpu: 2\n")
    assert text_problems(text) == [
        "brands/acme.yaml:10: serving.cpu: each key once (first at line 8; merge the two), "
        "got 'cpu' again"
    ]


def test_duplicate_keys_in_flow_mappings_and_overrides_are_found() -> None:
    text = VALID_TEXT.replace("{min: 2, max: 4}", "{min: 2, max: 4, min: 3}") + (
        "overrides:\n  prod:\n    serving: {cpu: 1}\n    serving: {memory: 2Gi}\n"
    )
    assert text_problems(text) == [
        "brands/acme.yaml:7: serving.replicas.min: each key once (first at line 7; "
        "merge the two), got 'min' again",
        "brands/acme.yaml:14: overrides.prod.serving: each key once (first at line 13; "
        "merge the two), got 'serving' again",
    ]


def test_duplicate_keys_come_with_the_other_problems_of_the_file() -> None:
    text = VALID_TEXT.replace("CC-42", "c c") + "serving:\n  cpu: 250m\n"
    assert text_problems(text) == [
        "brands/acme.yaml:11: serving: each key once (first at line 6; merge the two), "
        "got 'serving' again",
        "brands/acme.yaml: cost_center: 1-32 letters, digits, '-' or '_', got 'c c'",
    ]


def test_an_anchor_reused_through_an_alias_is_not_a_duplicate() -> None:
    text = VALID_TEXT + "overrides:\n  dev: &small {serving: {cpu: 250m}}\n  prod: *small\n"
    brand = parse_brand(text, "brands/acme.yaml", stem="acme")
    assert brand.for_environment("prod").serving.cpu == "250m"


# Issue 20, finding 7: Kubernetes quantities as Kubernetes accepts them, stored canonically.
CPU_ACCEPTED = [
    (1, "1000m"),
    (0.5, "500m"),
    (2, "2000m"),
    ("2", "2000m"),
    ("1.5", "1500m"),
    ("500m", "500m"),
    ("1000m", "1000m"),
    (".25", "250m"),
    ("5e-1", "500m"),
    ("1E0", "1000m"),
    ("+3", "3000m"),
    ("0.0001", "1m"),  # Kubernetes rounds sub-millicore requests up to 1m, and so do we.
    ("250000u", "250m"),
]


@pytest.mark.parametrize(
    ("given", "canonical"), CPU_ACCEPTED, ids=[repr(c[0]) for c in CPU_ACCEPTED]
)
def test_cpu_accepts_kubernetes_quantities_as_millicores(given: Any, canonical: str) -> None:
    brand = parse_brand(
        yaml.safe_dump(with_value("serving.cpu", given)), "brands/acme.yaml", stem="acme"
    )
    assert brand.serving.cpu == canonical


MEMORY_ACCEPTED = [
    ("512Mi", "512Mi"),
    ("2Gi", "2Gi"),
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("1048576Ki", "1Gi"),
    ("1G", "954Mi"),  # 10^9 bytes, rounded up to whole MiB: a limit is never cut below the ask
    ("1e9", "954Mi"),
    ("512M", "489Mi"),
    (268435456, "256Mi"),
    ("1Ti", "1024Gi"),
]


@pytest.mark.parametrize(
    ("given", "canonical"), MEMORY_ACCEPTED, ids=[repr(m[0]) for m in MEMORY_ACCEPTED]
)
def test_memory_accepts_kubernetes_quantities_as_whole_mebibytes(
    given: Any, canonical: str
) -> None:
    brand = parse_brand(
        yaml.safe_dump(with_value("training.memory", given)), "brands/acme.yaml", stem="acme"
    )
    assert brand.training.memory == canonical


def test_quantities_written_as_yaml_numbers_parse_from_the_file() -> None:
    text = VALID_TEXT.replace("cpu: 500m", "cpu: 0.5") + "  cpu: 1\n  memory: 1e9\n"
    brand = parse_brand(text, "brands/acme.yaml", stem="acme")
    assert (brand.serving.cpu, brand.training.cpu, brand.training.memory) == (
        "500m",
        "1000m",
        "954Mi",
    )


QUANTITY_REFUSED = [
    ("serving.cpu", "lots", "a Kubernetes CPU quantity such as 500m or 2, got 'lots'"),
    ("serving.cpu", "1 core", "a Kubernetes CPU quantity such as 500m or 2, got '1 core'"),
    ("serving.cpu", "2Gi", "a Kubernetes CPU quantity such as 500m or 2, got '2Gi'"),
    ("serving.cpu", True, "a Kubernetes CPU quantity such as 500m or 2, got true"),
    ("serving.cpu", None, "a Kubernetes CPU quantity such as 500m or 2, got null"),
    ("serving.cpu", 0, "a CPU quantity above 0, such as 500m, got 0"),
    ("serving.cpu", "-1", "a CPU quantity above 0, such as 500m, got '-1'"),
    (
        "serving.cpu",
        500,
        "at most 256 CPU cores per pod (a bare number counts cores; did you mean '500m'?), got 500",
    ),
    ("serving.cpu", "1e3", "at most 256 CPU cores per pod, got '1e3'"),
    (
        "serving.memory",
        "1GB",
        "a Kubernetes memory quantity such as 512Mi or 2Gi, got '1GB'",
    ),
    ("serving.memory", "512mi", "a Kubernetes memory quantity such as 512Mi or 2Gi, got '512mi'"),
    ("serving.memory", [], "a Kubernetes memory quantity such as 512Mi or 2Gi, got a list of 0"),
    (
        "serving.memory",
        512,
        "at least 1Mi of memory (a bare number counts bytes; did you mean '512Mi'?), got 512",
    ),
    ("serving.memory", "100Ki", "at least 1Mi of memory, got '100Ki'"),
    ("serving.memory", "0", "at least 1Mi of memory, got '0'"),
    ("serving.memory", "5Ti", "at most 4Ti of memory per pod, got '5Ti'"),
    ("serving.memory", "1e99999999", "at most 4Ti of memory per pod, got '1e99999999'"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    QUANTITY_REFUSED,
    ids=[f"{q[0]}={q[1]!r}" for q in QUANTITY_REFUSED],
)
def test_quantity_refusal_says_what_kubernetes_wants(path: str, value: Any, message: str) -> None:
    assert problems(with_value(path, value)) == [f"brands/acme.yaml: {path}: {message}"]


# Issue 20, finding 8: placeholders would become the brand's owner and cost-center tags.
OWNER_PLACEHOLDERS = [
    "team@example.com",
    "recs@acme.example.com",
    "recs@example.org",
    "recs@EXAMPLE.NET",
    "recs@acme.test",
    "recs@acme.example",
    "recs@acme.invalid",
    "recs@shop.localhost",
]


@pytest.mark.parametrize("owner", OWNER_PLACEHOLDERS)
def test_placeholder_owner_is_refused_with_what_to_write(owner: str) -> None:
    domain = owner.split("@")[1]
    assert problems(with_value("owner", owner)) == [
        f"brands/acme.yaml: owner: the owning team's real email address ({domain} is reserved "
        f"for examples and receives no mail), got '{owner}'"
    ]


COST_CENTER_PLACEHOLDERS = ["CC-0000", "0000", "cc_000", "CC-XXXX", "xxx", "TBD", "CC-TODO", "n-a"]


@pytest.mark.parametrize("cost_center", COST_CENTER_PLACEHOLDERS)
def test_placeholder_cost_center_is_refused_with_what_to_write(cost_center: str) -> None:
    assert problems(with_value("cost_center", cost_center)) == [
        "brands/acme.yaml: cost_center: the cost center your finance team assigned to the brand "
        f"(not a placeholder), got '{cost_center}'"
    ]


@pytest.mark.parametrize("cost_center", ["CC-42", "CC-NEWS-01", "FINX", "CC-1000", "TEST-7"])
def test_real_looking_cost_centers_are_kept(cost_center: str) -> None:
    brand = Brand.model_validate(with_value("cost_center", cost_center))
    assert brand.cost_center == cost_center


# Issue 20, finding 9: every problem of a file at once, and a hint for a misspelt key.
def test_name_mismatch_comes_with_the_other_problems() -> None:
    data = with_value("owner", "nobody")
    data["name"] = "other"
    data["serving"]["replica"] = {"min": 1}
    data["overrides"] = {"prod": {"serving": {"replicas": {"max": 1}}}}
    assert problems(data) == [
        "brands/acme.yaml: owner: an email address (must have an @-sign), got 'nobody'",
        "brands/acme.yaml: serving.replica: no such key (did you mean 'replicas'?), got 'replica'",
        "brands/acme.yaml: name: the file's stem 'acme' (rename one), got 'other'",
        "brands/acme.yaml: overrides.prod.serving.replicas.max: must be >= min (2), got 1",
    ]


MISSPELT = [
    ("serving.replica", "replicas"),
    ("serving.replicas.maximum", "max"),
    ("serving.latency_slo", "latency_slo_ms"),
    ("training.schedul", "schedule"),
    ("training.lightgbm.learningrate", "learning_rate"),
    ("training.promotion.min_gains", "min_gain"),
    ("trainig", "training"),
    ("cost_centre", "cost_center"),
]


@pytest.mark.parametrize(("path", "suggestion"), MISSPELT, ids=[m[0] for m in MISSPELT])
def test_misspelt_key_suggests_the_field_at_that_path(path: str, suggestion: str) -> None:
    key = path.rsplit(".", 1)[-1]
    found = problems(with_value(path, 1))
    assert f"brands/acme.yaml: {path}: no such key (did you mean '{suggestion}'?), got '{key}'" in (
        found
    )


def test_misspelt_key_in_an_override_suggests_the_field() -> None:
    data = with_value("overrides", {"prod": {"serving": {"latency_slo": 40}, "trainig": {}}})
    assert problems(data) == [
        "brands/acme.yaml: overrides.prod.trainig: no such key (did you mean 'training'?), "
        "got 'trainig'",
        "brands/acme.yaml: overrides.prod.serving.latency_slo: no such key "
        "(did you mean 'latency_slo_ms'?), got 'latency_slo'",
    ]


def test_every_accepted_quantity_is_one_the_infra_code_consumes() -> None:
    # infra sizes pods, quotas and LightGBM threads from these strings; a form it cannot
    # read would only fail at `pulumi up`.
    from infra.brand_namespace import cpu_milli, memory_mi
    from infra.brand_pods import CPU_LIMIT_FACTOR, resources

    memories = itertools.cycle(MEMORY_ACCEPTED)
    for given_cpu, cpu in CPU_ACCEPTED:
        given_memory, memory = next(memories)
        data = with_value("serving.cpu", given_cpu)
        data["serving"]["memory"] = given_memory
        serving = Brand.model_validate(data).serving
        assert (serving.cpu, serving.memory) == (cpu, memory)
        assert f"{cpu_milli(serving.cpu)}m" == cpu
        assert memory_mi(serving.memory) >= 1
        limits = resources(serving.cpu, serving.memory).limits
        assert limits == {"cpu": f"{CPU_LIMIT_FACTOR * cpu_milli(cpu)}m", "memory": memory}
