"""Any valid brand survives a trip through YAML unchanged."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ranking_features.brand import (
    BRAND_NAME_PATTERN,
    Brand,
    Environment,
    PromotionMetric,
    parse_brand,
)
from ranking_features.brand.fields import is_placeholder_cost_center

pytestmark = pytest.mark.fast

names = st.from_regex(BRAND_NAME_PATTERN, fullmatch=True)
cost_centers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z").filter(
    lambda cost_center: not is_placeholder_cost_center(cost_center)
)
display_names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64)
# Every form a brand file may use: quantity strings and bare YAML numbers alike.
cpu = st.one_of(
    st.integers(1, 64000).map(lambda m: f"{m}m"),
    st.integers(1, 64).map(str),
    st.integers(1, 64),
    st.integers(1, 64000).map(lambda m: m / 1000),
)
memory = st.one_of(
    st.integers(1, 4096).map(lambda n: f"{n}Mi"),
    st.integers(1, 64).map(lambda n: f"{n}Gi"),
    st.integers(2, 64000).map(lambda n: f"{n}M"),
    st.integers(2**20, 2**36),
)


@st.composite
def brands(draw: st.DrawFn) -> Brand:
    low = draw(st.integers(1, 100))
    environments = draw(st.lists(st.sampled_from(list(Environment)), min_size=1, unique=True))
    return Brand.model_validate(
        {
            "name": draw(names),
            "display_name": draw(display_names),
            "owner": "team@recplat.dev",
            "cost_center": draw(cost_centers),
            "environments": environments,
            "serving": {
                "replicas": {"min": low, "max": draw(st.integers(low, 200))},
                "cpu": draw(cpu),
                "memory": draw(memory),
                "latency_slo_ms": draw(st.integers(5, 5000)),
                "max_candidates": draw(st.integers(1, 2000)),
                "challenger_traffic": draw(st.floats(0, 0.5)),
            },
            "training": {
                "schedule": f"{draw(st.integers(0, 59))} {draw(st.integers(0, 23))} * * *",
                "lookback_days": draw(st.integers(1, 365)),
                "lightgbm": {
                    "num_leaves": draw(st.integers(2, 1024)),
                    "learning_rate": draw(st.floats(0.001, 1.0)),
                },
                "promotion": {
                    "metric": draw(st.sampled_from(list(PromotionMetric))).value,
                    "min_gain": draw(st.floats(0, 1)),
                },
                "workers": draw(st.integers(0, 64)),
                "cpu": draw(cpu),
                "memory": draw(memory),
            },
            "overrides": {
                env.value: {"serving": {"latency_slo_ms": draw(st.integers(5, 5000))}}
                for env in environments[:1]
            },
        }
    )


@settings(max_examples=150, deadline=None)
@given(brands())
def test_valid_brand_round_trips_through_yaml(brand: Brand) -> None:
    text = yaml.safe_dump(brand.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
    assert parse_brand(text, f"brands/{brand.name}.yaml", stem=brand.name) == brand
