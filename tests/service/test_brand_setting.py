"""The service accepts as `RECPLAT_BRAND` exactly the names a brand file may have: one
pattern (`ranking_features.brand.fields.BRAND_NAME_PATTERN`), not a copy that drifts."""

from __future__ import annotations

from pathlib import Path

import pytest
from ranking_features.brand.fields import is_brand_name
from ranking_service.settings import SettingsError, load_settings

pytestmark = pytest.mark.fast

NAMES = ["acme", "shop-smart", "a1b", "a" * 24, "a--b", "ab", "a" * 25, "Acme", "1acme", "acme-"]


@pytest.mark.parametrize("name", NAMES)
def test_the_service_takes_a_brand_name_exactly_when_a_brand_file_may_have_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv("RECPLAT_BRAND", name)
    monkeypatch.setenv("RECPLAT_LAKE_URI", f"file://{tmp_path}")
    monkeypatch.setenv("RECPLAT_API_KEY_FILE", str(tmp_path / "key"))
    if is_brand_name(name):
        assert load_settings().brand == name
        return
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith("invalid service environment: RECPLAT_BRAND: "), error.value


def test_a_doubled_dash_is_refused_by_both() -> None:
    # The service's own pattern once accepted it; the brand file never did.
    assert not is_brand_name("a--b")
