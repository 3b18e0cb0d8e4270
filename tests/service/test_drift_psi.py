"""The drift statistic (`ranking_features.drift`): PSI on distributions computed by hand, the
training bins, the stored distribution's errors, and the PSI that sampling noise alone gives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ranking_features.drift import (
    DriftDataError,
    FeatureDistribution,
    feature_distribution,
    population_stability_index,
    unshifted_psi,
)


@pytest.mark.parametrize(
    ("expected", "actual", "psi"),
    [
        # (0.25-0.5) ln(0.25/0.5) + (0.75-0.5) ln(0.75/0.5) = 0.173287 + 0.101366
        ([50, 50], [25, 75], 0.274653),
        # 0.3 ln 4 + 0.1 ln 1.5 + (-0.1) ln(2/3) + (-0.3) ln(1/4)
        ([10, 20, 30, 40], [40, 30, 20, 10], 0.912869),
        # Scale does not matter, only shares: 1000 vs 10 rows of the same shares.
        ([500, 500], [5, 5], 0.0),
        # An empty training bin counts as a share of 1e-4:
        # (0.95-1) ln(0.95/1) + (0.05-1e-4) ln(0.05/1e-4) = 0.002565 + 0.310109
        ([100, 0], [95, 5], 0.312674),
    ],
)
def test_psi_equals_the_hand_computed_value(
    expected: list[int], actual: list[int], psi: float
) -> None:
    assert population_stability_index(expected, actual) == pytest.approx(psi, abs=1e-6)


def test_psi_is_symmetric_and_refuses_mismatched_bins() -> None:
    a, b = [10, 20, 30, 40], [25, 25, 25, 25]
    assert population_stability_index(a, b) == pytest.approx(population_stability_index(b, a))
    with pytest.raises(ValueError, match=r"bins: as many actual counts as expected \(4\), got 3"):
        population_stability_index(a, [1, 2, 3])


def test_training_bins_are_right_closed_deciles_and_a_point_mass_gets_its_own_bin() -> None:
    values = np.arange(1, 101, dtype=np.float32)
    binary = np.r_[np.zeros(70), np.ones(30)].astype(np.float32)
    distribution = feature_distribution(np.column_stack([values, binary]), "test", ("v", "b"))
    deciles = distribution.features["v"]
    # Each decile's edge is midway into the gap above it (MASS_TOLERANCE).
    assert deciles.edges == (10.5, 20.5, 30.5, 40.5, 50.5, 60.5, 70.5, 80.5, 90.5)
    assert deciles.counts == (10,) * 10
    # 10 and 10.5 are in the first bin (right-closed), 10.6 in the second, 1000 in the last.
    counts = deciles.bin_counts(np.array([10.0, 10.5, 10.6, 1000.0])).tolist()
    assert counts == [2, 1] + [0] * 7 + [1]
    # The deciles of a 0/1 feature are 0 and 1: bins (-inf, 0.5], (0.5, 1 + 1e-4], (1 + 1e-4, inf).
    point_mass = distribution.features["b"]
    assert point_mass.edges == (0.5, 1.0001)
    assert point_mass.counts == (70, 30, 0)
    # A point mass that moves by less than half the gap to the next value stays in its bin.
    assert point_mass.bin_counts(np.array([0.01, 1.00005])).tolist() == [1, 1, 0]


def test_without_drift_psi_is_the_sampling_noise_and_a_small_shift_is_far_above_it() -> None:
    rng = np.random.default_rng(19)
    training = rng.lognormal(0.0, 1.0, (20_000, 1)).astype(np.float32)
    histogram = feature_distribution(training, "test", ("x",)).features["x"]
    bins = len(histogram.counts)

    def psi(sample: np.ndarray) -> float:
        return population_stability_index(histogram.counts, histogram.bin_counts(sample))

    n = 1000
    unshifted = [psi(rng.lognormal(0.0, 1.0, n)) for _ in range(300)]
    expected = unshifted_psi(bins, n, len(training))
    print(
        f"\nPSI without drift, n={n}: mean {np.mean(unshifted):.4f} (formula {expected:.4f}), "
        f"99th percentile {np.quantile(unshifted, 0.99):.4f}, max {max(unshifted):.4f}"
    )
    assert np.mean(unshifted) == pytest.approx(expected, rel=0.15)
    assert max(unshifted) < 0.2 / 4, "the default threshold is far above noise at 1000 rows"
    # A shift of a quarter of a standard deviation of log x is well past the threshold.
    shifted = [psi(rng.lognormal(0.25 * 1.0 + 0.5, 1.0, n)) for _ in range(20)]
    assert min(shifted) > 0.2, min(shifted)


def test_a_stored_distribution_round_trips_and_a_bad_field_is_named() -> None:
    rng = np.random.default_rng(1)
    distribution = feature_distribution(rng.normal(size=(500, 2)), "w", ("a", "b"))
    data = distribution.to_dict()
    assert FeatureDistribution.from_dict(data) == distribution
    broken = {**data, "features": {**data["features"], "b": {"edges": [0.0], "counts": [1]}}}
    with pytest.raises(DriftDataError) as error:
        FeatureDistribution.from_dict(broken, "d.json")
    assert str(error.value) == ("d.json: features.b.counts: 2 integers >= 0 (one per bin), got [1]")
    unsorted = {**data, "features": {"a": {"edges": [1.0, 0.0], "counts": [1, 1, 1]}}}
    with pytest.raises(DriftDataError, match=r"features\.a\.edges: strictly increasing"):
        FeatureDistribution.from_dict(unsorted, "d.json")
    with pytest.raises(DriftDataError, match=r"d\.json: valid JSON"):
        FeatureDistribution.from_json("{", "d.json")
    assert not math.isnan(population_stability_index([1, 2], [2, 1]))
