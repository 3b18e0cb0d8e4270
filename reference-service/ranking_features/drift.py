"""Feature drift, defined once: the served sample's lake schema, the training distribution
stored with a model version, and the population stability index that compares the two.

The service writes a sample of the feature vectors it served (`FEATURE_SAMPLE_SCHEMA`, under
`events/features/date=YYYY-MM-DD/`); training stores each feature's distribution on the newest
window of its data (`FeatureDistribution`, the run artifact `features/distribution.json`); the
drift job (`ranking-experiments drift`) bins the served values with the training bins and
computes, per feature (docs/architecture.md, "Feature drift"):

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

over the bins i, with e_i the training share and a_i the served share of bin i, each floored
at `PSI_EPSILON` (1e-4) so that an empty bin counts as a share of 1e-4 instead of dividing by
zero: a bin the training data never filled that holds 5 % of the served rows adds
0.05 x ln(0.05 / 1e-4) = 0.31 on its own, which is drift the model never saw.

Bins are the training values' deciles (`DEFAULT_BINS`), right-closed, each edge moved from
the decile into the gap above it (midway to the next value the data has; values within
`MASS_TOLERANCE` of the deciles' spread count as one): (-inf, e1], (e1, e2], ..., (e9, inf).
Deciles in one point mass merge, so a feature with a point mass (recently_seen is 0 or 1)
gets fewer bins and never a bin the training data cannot fill, and a point mass that moves a
little (a batch of items published together, whose `item_age_days` grows by the minute)
stays in its bin. Without drift, PSI is sampling
noise: about (B - 1) x (1/n + 1/m) for B bins, n served and m training rows (PSI is the
symmetric Kullback-Leibler divergence, and n x its leading term is chi-squared with B - 1
degrees of freedom), so 0.009 at n = 1000 against any large training window.

numpy and pyarrow only: the service, training and the drift job all import it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ranking_features.definition import FEATURE_NAMES, FEATURE_VERSION
from ranking_features.events import TIMESTAMP
from ranking_features.mlflow_names import DISTRIBUTION_ARTIFACT

"""The training distribution, an artifact of the run that registered the version."""
DISTRIBUTION_FORMAT = 1
DEFAULT_BINS = 10
PSI_EPSILON = 1e-4
"""The floor of a bin's share in the PSI sum (module docstring)."""

FEATURE_SAMPLE_SCHEMA = pa.schema(
    [
        # `<request_id>:<position>`, like the impression row of the same item.
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        # "champion" or "challenger": the fallback scores no features, so it samples none.
        pa.field("variant", pa.string(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
        pa.field("feature_version", pa.int32(), nullable=False),
        # The vector the model scored, one float32 column per feature (FEATURE_NAMES).
        *(pa.field(name, pa.float32()) for name in FEATURE_NAMES),
    ]
)


MASS_TOLERANCE = 1e-4
"""Values closer than this share of the deciles' spread are one point mass for the bins."""


class DriftDataError(ValueError):
    """A distribution or sample that cannot be compared; the message names the field."""


@dataclass(frozen=True)
class FeatureHistogram:
    """One feature's training distribution: inner bin edges and the rows in each bin.

    Bin 0 is (-inf, edges[0]], bin i is (edges[i-1], edges[i]], the last (edges[-1], inf).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def bin_counts(self, values: np.ndarray) -> np.ndarray:
        """How many of `values` fall in each of this histogram's bins."""
        bins = np.searchsorted(np.asarray(self.edges, dtype=np.float64), values, side="left")
        return np.bincount(bins, minlength=len(self.edges) + 1)


@dataclass(frozen=True)
class FeatureDistribution:
    """Every feature's training distribution, as stored with a model version."""

    feature_version: int
    rows: int
    window: str
    """Which training rows it counts (the newest window of the run's data)."""
    features: Mapping[str, FeatureHistogram]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DISTRIBUTION_FORMAT,
            "feature_version": self.feature_version,
            "rows": self.rows,
            "window": self.window,
            "binning": "deciles of the training values, right-closed; equal deciles merged",
            "features": {
                name: {"edges": list(h.edges), "counts": list(h.counts)}
                for name, h in self.features.items()
            },
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any, where: str = DISTRIBUTION_ARTIFACT) -> FeatureDistribution:
        """Parse a stored distribution; a DriftDataError names the field that is wrong."""
        if not isinstance(data, Mapping):
            raise DriftDataError(f"{where}: a JSON object, got {type(data).__name__}")
        if data.get("format") != DISTRIBUTION_FORMAT:
            raise DriftDataError(
                f"{where}: format: {DISTRIBUTION_FORMAT}, got {data.get('format')!r}"
            )
        feature_version = _integer(data, "feature_version", where)
        rows = _integer(data, "rows", where)
        features = data.get("features")
        if not isinstance(features, Mapping) or not features:
            raise DriftDataError(f"{where}: features: an object of feature histograms")
        parsed = {
            str(name): _histogram(value, f"{where}: features.{name}")
            for name, value in features.items()
        }
        return cls(feature_version, rows, str(data.get("window", "")), parsed)

    @classmethod
    def from_json(cls, text: str, where: str = DISTRIBUTION_ARTIFACT) -> FeatureDistribution:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise DriftDataError(f"{where}: valid JSON, got an error: {error}") from None
        return cls.from_dict(data, where)


def _integer(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DriftDataError(f"{where}: {key}: an integer >= 0, got {value!r}")
    return value


def _histogram(value: Any, where: str) -> FeatureHistogram:
    if not isinstance(value, Mapping):
        raise DriftDataError(f"{where}: an object with edges and counts")
    edges, counts = value.get("edges"), value.get("counts")
    if not isinstance(edges, list) or not all(
        isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) for e in edges
    ):
        raise DriftDataError(f"{where}.edges: a list of finite numbers, got {edges!r}")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise DriftDataError(f"{where}.edges: strictly increasing, got {edges!r}")
    if (
        not isinstance(counts, list)
        or len(counts) != len(edges) + 1
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
    ):
        raise DriftDataError(
            f"{where}.counts: {len(edges) + 1} integers >= 0 (one per bin), got {counts!r}"
        )
    if sum(counts) == 0:
        raise DriftDataError(f"{where}.counts: at least one row, got none")
    return FeatureHistogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def feature_distribution(
    features: np.ndarray,
    window: str,
    names: Sequence[str] = FEATURE_NAMES,
    bins: int = DEFAULT_BINS,
) -> FeatureDistribution:
    """The distribution of each column of `features` (rows x len(names)) in `bins` quantile
    bins, equal edges merged. Non-finite values are left out (features are finite by design)."""
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features: shape (rows, {len(names)}), got {features.shape}")
    if len(features) == 0:
        raise ValueError("features: at least one row to describe")
    histograms = {}
    for column, name in enumerate(names):
        values = features[:, column].astype(np.float64)
        values = values[np.isfinite(values)]
        levels = np.arange(1, bins) / bins
        # Inverted CDF: every decile is a value the data has; its edge goes into the gap above.
        edges = _gap_edges(values, np.unique(np.quantile(values, levels, method="inverted_cdf")))
        histogram = FeatureHistogram(tuple(float(e) for e in edges), ())
        counts = histogram.bin_counts(values)
        histograms[name] = FeatureHistogram(histogram.edges, tuple(int(c) for c in counts))
    return FeatureDistribution(FEATURE_VERSION, len(features), window, histograms)


def _gap_edges(values: np.ndarray, deciles: np.ndarray) -> np.ndarray:
    """Each decile's edge, moved up from the value into the gap after it: midway to the next
    value the data has more than `MASS_TOLERANCE` x (last decile - first) above the decile, or
    that tolerance above the largest. Values within the tolerance are one point mass, and a
    point mass fills one bin with room above it: a served value a little larger (the same
    items' `item_age_days` computed minutes later) stays in its bin."""
    distinct = np.unique(values)
    tolerance = MASS_TOLERANCE * float(deciles[-1] - deciles[0])
    edges: list[float] = []
    for decile in deciles:
        above = int(np.searchsorted(distinct, decile + tolerance, side="right"))
        top = float(distinct[above - 1])
        edge = (top + float(distinct[above])) / 2 if above < len(distinct) else top + tolerance
        if not edges or edge > edges[-1]:
            edges.append(edge)
    return np.asarray(edges)


def population_stability_index(
    expected: Sequence[int] | np.ndarray,
    actual: Sequence[int] | np.ndarray,
    epsilon: float = PSI_EPSILON,
) -> float:
    """PSI of the `actual` bin counts against the `expected` ones (module docstring)."""
    expected_counts = np.asarray(expected, dtype=np.float64)
    actual_counts = np.asarray(actual, dtype=np.float64)
    if expected_counts.shape != actual_counts.shape:
        raise ValueError(
            f"bins: as many actual counts as expected ({expected_counts.shape[0]}), "
            f"got {actual_counts.shape[0]}"
        )
    if expected_counts.sum() <= 0 or actual_counts.sum() <= 0:
        raise ValueError("counts: at least one row on each side")
    e = np.maximum(expected_counts / expected_counts.sum(), epsilon)
    a = np.maximum(actual_counts / actual_counts.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def unshifted_psi(bins: int, served_rows: int, training_rows: int) -> float:
    """The PSI that sampling noise alone gives on average: (B - 1) x (1/n + 1/m)."""
    return (bins - 1) * (1.0 / served_rows + 1.0 / training_rows)
