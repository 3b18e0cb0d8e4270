"""Brand-scoped names: derived once, within every Azure and Kubernetes limit, never shared."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ranking_features.brand import BRAND_NAME_PATTERN

from infra.brand_names import NAME_LIMITS, BrandSecret, brand_names, label_value

pytestmark = pytest.mark.fast

SUBSCRIPTION = "00000000-0000-4000-8000-00000000c0de"

# Brand names the brand file accepts, minus doubled dashes (see the test below).
brand_name = st.from_regex(BRAND_NAME_PATTERN, fullmatch=True).filter(lambda n: "--" not in n)


@given(brand_name, st.sampled_from(["dev", "prod"]))
def test_every_valid_brand_name_derives_names_within_limits(name: str, environment: str) -> None:
    names = brand_names(name, environment)
    for field, value in names.limited().items():
        limit = NAME_LIMITS[field]
        assert limit.min_length <= len(value) <= limit.max_length, (field, value)
        assert re.fullmatch(limit.pattern, value), (field, value)


def test_the_longest_brand_name_leaves_headroom_everywhere() -> None:
    names = brand_names("x" * 24, "prod")
    assert names.namespace == "brand-" + "x" * 24
    assert len(names.lake_container) == 30 <= 63
    assert len(names.identity) == len("id-recplat-prod-") + 24 <= 128
    # brand-<24>-mlflow-reader-password-<8 hex>
    assert len(names.limited()["mlflow_reader_password_secret"]) == 62 <= 127


def test_brands_never_share_an_azure_name_or_role_assignment() -> None:
    first, second = brand_names("alpha", "prod"), brand_names("beta", "prod")
    for field in ("namespace", "identity", "lake_container", "rule_group"):
        assert getattr(first, field) != getattr(second, field), field
    for secret in BrandSecret:
        assert first.secret_name(secret, "00c0ffee") != second.secret_name(secret, "00c0ffee")
    assignments = {
        names.role_assignment_name(role, SUBSCRIPTION)
        for names in (first, second, brand_names("alpha", "dev"))
        for role in ("lake-contributor", "api-key-reader")
    }
    assert len(assignments) == 6
    assert all(uuid.UUID(name) for name in assignments)
    # Stable across runs: a re-run never creates a second assignment.
    assert first.role_assignment_name("lake-contributor", SUBSCRIPTION) == brand_names(
        "alpha", "prod"
    ).role_assignment_name("lake-contributor", SUBSCRIPTION.upper())


def test_role_assignment_names_differ_per_subscription() -> None:
    """Azure wants assignment names unique in the tenant; one stack in two subscriptions of a
    tenant must not reuse them (issue 16)."""
    names = brand_names("alpha", "prod")
    other = "99999999-0000-4000-8000-000000000001"
    assert names.role_assignment_name("lake-contributor", SUBSCRIPTION) != (
        names.role_assignment_name("lake-contributor", other)
    )
    with pytest.raises(ValueError, match="needs the subscription id"):
        names.role_assignment_name("lake-contributor", "")


def test_no_brand_can_take_the_environments_own_container() -> None:
    assert brand_names("mlflow", "dev").lake_container == "brand-mlflow"


def test_a_doubled_dash_is_refused_with_the_rule_it_breaks() -> None:
    # Kubernetes accepts "ab--cd"; blob container names do not.
    with pytest.raises(
        ValueError, match=r"brand 'ab--cd': lake_container: 'brand-ab--cd' must match"
    ):
        brand_names("ab--cd", "dev")


def test_owner_emails_become_valid_label_values() -> None:
    assert label_value("news-personalisation@example.com") == "news-personalisation_example.com"
    long_owner = "a" * 70 + "@example.com"
    value = label_value(long_owner)
    assert len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)
    assert value != label_value("a" * 71 + "@example.com")
