"""One drift evaluation: the champion's reference distribution against its served sample, PSI per
feature, recorded on its registry version as `drift.*` tags (`ranking_features.mlflow_names`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ranking_features.definition import FEATURE_NAMES, FEATURE_VERSION
from ranking_features.drift import (
    DISTRIBUTION_ARTIFACT,
    DriftDataError,
    FeatureDistribution,
    population_stability_index,
    unshifted_psi,
)
from ranking_features.mlflow_names import (
    CHAMPION,
    DRIFT_EVALUATED_AT_TAG,
    DRIFT_PSI_TAG_PREFIX,
    DRIFT_SAMPLE_ROWS_TAG,
    DRIFT_THRESHOLD_TAG,
    DRIFT_WINDOW_TAG,
)

from ranking_training.drift_sample import read_served_sample
from ranking_training.drift_settings import DriftJobError, DriftSettings
from ranking_training.job_env import iso_utc, mlflow_unreachable


def run(settings: DriftSettings) -> dict[str, Any]:
    """Judge the champion's drift and record it on its version; returns what happened."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    base: dict[str, Any] = {
        "brand": settings.brand,
        "model_name": settings.model_name,
        "window": _window(settings),
        "psi_threshold": settings.psi_threshold,
    }
    version = _champion(client, settings)
    if version is None:
        return {**base, "judged": False, "message": f"no champion: {settings.model_name} "
                "has no champion alias, so nothing serves and nothing can drift"}  # fmt: skip
    label = f"{settings.model_name} v{version.version}"
    reference = _distribution(client, settings, version, label)
    sample = read_served_sample(
        settings.lake_uri, settings.since, settings.until, str(version.version)
    )
    rows = len(sample.features)
    result = {
        **base,
        "model_version": str(version.version),
        "sample_rows": rows,
        "training_rows": reference.rows,
        "training_window": reference.window,
        "files_read": sample.files,
        "skipped_rows": sample.skipped,
    }
    if rows < settings.min_rows:
        _record(client, settings, str(version.version), None, rows)
        return {
            **result,
            "judged": False,
            "message": (
                f"{rows} sampled rows of v{version.version} in {result['window']}, fewer than "
                f"the {settings.min_rows} a verdict needs: no verdict, drift tags removed "
                "(more traffic, a longer --window-hours or a larger monitoring.feature_sample)"
            ),
        }
    psi = {
        name: population_stability_index(
            histogram.counts, histogram.bin_counts(sample.features[:, column])
        )
        for column, (name, histogram) in enumerate(_in_feature_order(reference, label))
    }
    _record(client, settings, str(version.version), psi, rows)
    bins = max(len(h.counts) for h in reference.features.values())
    return {
        **result,
        "judged": True,
        "psi": psi,
        "drifted": sorted(name for name, value in psi.items() if value > settings.psi_threshold),
        "noise_psi": unshifted_psi(bins, rows, max(reference.rows, 1)),
    }


def _in_feature_order(reference: FeatureDistribution, label: str) -> list[tuple[str, Any]]:
    missing = [name for name in FEATURE_NAMES if name not in reference.features]
    if reference.feature_version != FEATURE_VERSION or missing:
        raise DriftJobError(
            f"{label}: {DISTRIBUTION_ARTIFACT}: features: the {len(FEATURE_NAMES)} features "
            f"of feature_version {FEATURE_VERSION} ({', '.join(FEATURE_NAMES)}), got version "
            f"{reference.feature_version} without {', '.join(missing) or 'none'}; the "
            "champion predates these features: retrain it"
        )
    return [(name, reference.features[name]) for name in FEATURE_NAMES]


def _champion(client: Any, settings: DriftSettings) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(settings.model_name, CHAMPION)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise _unreachable(settings, error) from error
    except Exception as error:  # requests' connection errors, once MLflow stops retrying
        raise _unreachable(settings, error) from error


def _distribution(
    client: Any, settings: DriftSettings, version: Any, label: str
) -> FeatureDistribution:
    """The champion's stored training distribution; a DriftJobError says why it has none."""
    import tempfile

    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="recplat-drift-") as scratch:
        try:
            path = download_artifacts(
                run_id=version.run_id,
                artifact_path=DISTRIBUTION_ARTIFACT,
                dst_path=scratch,
                tracking_uri=settings.tracking_uri,
            )
            text = Path(path).read_text(encoding="utf-8")
        except Exception as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DriftJobError(
                f"{label} (run {version.run_id}): {DISTRIBUTION_ARTIFACT}: no training "
                f"distribution stored with the champion ({detail[:200]}); it was trained before "
                "drift monitoring: retrain the brand (ranking-train stores one with every "
                "version)"
            ) from None
    try:
        return FeatureDistribution.from_json(text, where=f"{label}: {DISTRIBUTION_ARTIFACT}")
    except DriftDataError as error:
        raise DriftJobError(str(error)) from None


def _record(
    client: Any,
    settings: DriftSettings,
    version: str,
    psi: dict[str, float] | None,
    rows: int,
) -> None:
    """The verdict as the version's tags; without one, the PSI tags are removed."""
    model = settings.model_name
    try:
        current = dict(client.get_model_version(model, version).tags or {})
        kept = {f"{DRIFT_PSI_TAG_PREFIX}{name}" for name in psi or {}}
        for key in current:
            if key.startswith(DRIFT_PSI_TAG_PREFIX) and key not in kept:
                client.delete_model_version_tag(model, version, key)
        tags = {
            DRIFT_SAMPLE_ROWS_TAG: str(rows),
            DRIFT_WINDOW_TAG: _window(settings),
            DRIFT_THRESHOLD_TAG: f"{settings.psi_threshold:g}",
        }
        tags |= {
            f"{DRIFT_PSI_TAG_PREFIX}{name}": f"{value:.6f}" for name, value in (psi or {}).items()
        }
        # Last: the service takes a verdict whole once this tag changes (drift_gauges).
        tags[DRIFT_EVALUATED_AT_TAG] = iso_utc(settings.until)
        for key, value in tags.items():
            client.set_model_version_tag(model, version, key, value)
    except Exception as error:
        raise DriftJobError(
            f"could not record the drift of {model} v{version} in MLflow at "
            f"{settings.tracking_uri}: {str(error)[:300]}; rerun the job"
        ) from error


def describe(result: dict[str, Any]) -> str:
    """The result for a person: per feature its PSI against the threshold."""
    head = f"{result['brand']}: {result['model_name']}"
    if not result["judged"]:
        return f"{head}: {result['message']}"
    lines = [
        f"{head} v{result['model_version']}: {result['sample_rows']} sampled rows in "
        f"{result['window']} vs {result['training_rows']} training rows "
        f"({result['training_window']}); PSI of noise alone ~{result['noise_psi']:.3f}",
    ]
    for name, value in result["psi"].items():
        flag = "DRIFTED" if value > result["psi_threshold"] else "ok"
        lines.append(f"  {name:<24} PSI {value:8.4f}  {flag}")
    drifted = result["drifted"]
    lines.append(
        f"  threshold {result['psi_threshold']:g}: "
        + (f"{len(drifted)} feature(s) drifted: {', '.join(drifted)}" if drifted else "no drift")
    )
    return "\n".join(lines)


def _window(settings: DriftSettings) -> str:
    return f"[{iso_utc(settings.since)}, {iso_utc(settings.until)})"


def _unreachable(settings: DriftSettings, error: Exception) -> DriftJobError:
    return DriftJobError(mlflow_unreachable(settings.tracking_uri, error))
