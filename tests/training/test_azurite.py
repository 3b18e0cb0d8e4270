"""The same job reading the lake from Azurite through abfs:// (adlfs, blob API)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient
from ranking_training.__main__ import main

from recplat.synthetic import SyntheticData, write_lake
from tests.training.lake_window import END, FIRST

pytestmark = [pytest.mark.azurite, pytest.mark.slow]


def test_training_reads_an_abfs_lake_on_azurite(
    azurite: object,
    mlflow_server: object,
    synthetic: SyntheticData,
    brand_name: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connection_string = azurite.connection_string  # type: ignore[attr-defined]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    brand = brand_name()
    BlobServiceClient.from_connection_string(connection_string).create_container(brand)
    lake_uri = f"abfs://{brand}/lake"
    write_lake(synthetic, lake_uri)

    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    exit_code = main(
        [
            "--brand", brand,
            "--lake-uri", lake_uri,
            "--tracking-uri", tracking_uri,
            "--from", str(FIRST),
            "--to", str(END),
            "--num-threads", "1",
        ]
    )  # fmt: skip
    assert exit_code == 0, capsys.readouterr().err
    assert f"registered {brand}-ranker v1" in capsys.readouterr().out
    version = MlflowClient(tracking_uri).get_model_version_by_alias(f"{brand}-ranker", "champion")
    assert version.tags["data_to"] == str(END)
