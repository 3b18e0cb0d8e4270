"""Fixtures of the training tests: a small synthetic lake, written once per session."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from recplat.synthetic import SyntheticData, SynthParams, generate, write_lake
from tests.training.lake_window import DAYS, END


@pytest.fixture(scope="session")
def synthetic() -> SyntheticData:
    """~50k impressions: enough for a model to beat popularity clearly, small enough to be fast."""
    return generate(
        SynthParams(brand="lake", users=1000, items=300, days=DAYS, seed=11, end_date=str(END))
    )


@pytest.fixture(scope="session")
def clean_lake(synthetic: SyntheticData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_lake(synthetic, root.as_uri())
    return root


@pytest.fixture
def lake_copy(clean_lake: Path, tmp_path: Path) -> Path:
    """A private copy of the clean lake that a test may corrupt."""
    copy = tmp_path / "lake"
    shutil.copytree(clean_lake, copy)
    return copy


@pytest.fixture
def brand_name() -> Callable[[], str]:
    """Fresh brand names, so tests sharing one MLflow server never see each other's models."""
    return lambda: f"t6{uuid.uuid4().hex[:8]}"
