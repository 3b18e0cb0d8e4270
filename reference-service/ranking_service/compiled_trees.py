"""A LightGBM model's trees as lookup tables, scored with a handful of numpy calls.

LightGBM walks every tree node by node for every row: about 0.3 ms for 100 candidates and a
200-tree, 31-leaf model, most of the service's CPU per request. This is the QuickScorer
scheme (Lucchese et al., SIGIR 2015) in numpy:

- Every split `x[f] <= t` of a tree gets a bit mask over the tree's leaves (numbered left to
  right) that clears the leaves of its left subtree. A row leaves the tree at the leftmost
  leaf that survives the masks of all the splits it fails (`x[f] > t`).
- Per feature, the splits of all trees are sorted by threshold, so the splits a row fails are
  a prefix: `searchsorted` finds its length, and a table holds, per prefix length, the AND
  of the prefix's masks for every tree. Splits share thresholds (LightGBM splits at bin
  edges), so there is one prefix per distinct threshold: about 1 MB for 200 trees.
- One table row per feature, ANDed, gives every tree's surviving leaves; the lowest set bit
  is the exit leaf, found by a de Bruijn multiply.

Tables grow with splits x trees, so trees are compiled in blocks of at most `BLOCK_TREES`
(a 300-tree, 31-leaf model is one block of about 1 MB).

Only what this scheme scores exactly is compiled: numerical splits with no missing-value
branch, one tree per iteration, constant leaves, up to 64 leaves. `compile_trees()` raises
`NotCompilableError` otherwise, and `verify()` compares the tables with LightGBM's own
`Booster.predict` on given rows and on each split's boundary values; the service scores with
LightGBM whenever either refuses. LightGBM adds the trees in order, numpy pairwise, so scores
differ in the last bits (about 1e-15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

BLOCK_TREES = 512
MAX_TABLE_BYTES = 64 * 1024 * 1024
MAX_LEAVES = 64
# LightGBM treats |x| <= kZeroThreshold as 0 and, without a missing-value branch, NaN as 0.
_ZERO_THRESHOLD = float(np.float32(1e-35))  # kZeroThreshold is a C float
_ALL_BITS = (1 << 64) - 1


class NotCompilableError(ValueError):
    """The model uses something the tables do not score exactly; the message says what."""


# De Bruijn sequences: (lowest set bit * constant) >> shift is a distinct slot per bit.
_DE_BRUIJN: dict[Any, tuple[int, int]] = {
    np.uint32: (0x077CB531, 27),
    np.uint64: (0x03F79D71B4CB0A89, 58),
}


@dataclass(frozen=True)
class _Block:
    """A run of consecutive trees of the model."""

    features: tuple[int, ...]  # the features these trees split on
    thresholds: tuple[np.ndarray, ...]  # per feature: its split thresholds, ascending
    offsets: np.ndarray  # per feature: where its prefix rows start in `table`, shape (f, 1)
    table: np.ndarray  # (prefix rows, trees) leaf masks, uint32 or uint64
    de_bruijn: tuple[Any, int]  # multiplier and shift (table dtype) giving a leaf's slot
    slot_base: np.ndarray  # per tree: tree * slots, to index `slot_values` (table dtype)
    slot_values: np.ndarray  # (trees * slots,) float64: each tree's leaf values by slot

    def score(self, columns: np.ndarray) -> np.ndarray:
        index = np.empty((len(self.features), columns.shape[1]), dtype=np.intp)
        for i, feature in enumerate(self.features):
            index[i] = self.thresholds[i].searchsorted(columns[feature], side="left")
        index += self.offsets
        surviving = self.table.take(index[0], axis=0)
        for more in index[1:]:
            surviving &= self.table.take(more, axis=0)
        slot = surviving & np.negative(surviving)  # the lowest set bit: the exit leaf
        multiplier, shift = self.de_bruijn
        slot *= multiplier
        slot >>= shift
        slot += self.slot_base
        return self.slot_values.take(slot).sum(axis=1)


@dataclass(frozen=True)
class CompiledTrees:
    """Scores equal to `Booster.predict(x)` (to ~1e-15) for the models `compile_trees` takes."""

    num_features: int
    num_trees: int
    table_bytes: int
    blocks: tuple[_Block, ...]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of feature rows (n, num_features), float64."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"expected rows of {self.num_features} features, got shape {features.shape}"
            )
        values = np.asarray(features, dtype=np.float64)
        columns = np.where(np.abs(values) > _ZERO_THRESHOLD, values, 0.0).T.copy()
        scores = self.blocks[0].score(columns)
        for block in self.blocks[1:]:
            scores += block.score(columns)
        return scores

    def verify(self, booster: lgb.Booster, rows: np.ndarray, *, tolerance: float = 1e-9) -> None:
        """Raise NotCompilableError unless these scores match LightGBM's on `rows` and on every
        split's boundary (the threshold itself, the next float above, and far beyond)."""
        probes = np.vstack([np.asarray(rows, dtype=np.float64), self._boundary_rows(rows)])
        expected = np.asarray(booster.predict(probes, num_threads=1), dtype=np.float64)
        got = self.predict(probes)
        error = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
        if not np.all(error <= tolerance):
            worst = int(np.argmax(error))
            raise NotCompilableError(
                f"compiled scores differ from LightGBM's by {error[worst]:.3g} "
                f"(row {worst}: {got[worst]!r} vs {expected[worst]!r})"
            )

    def _boundary_rows(self, rows: np.ndarray, count: int = 512) -> np.ndarray:
        rng = np.random.default_rng(0)
        base = np.asarray(rows, dtype=np.float64)
        if len(base) == 0:
            base = np.zeros((1, self.num_features))
        probes = base[rng.integers(0, len(base), count)].copy()
        for block in self.blocks:
            for feature, thresholds in zip(block.features, block.thresholds, strict=True):
                edges = np.concatenate(
                    [
                        thresholds,
                        np.nextafter(thresholds, np.inf),
                        [thresholds[0] - 1e6, thresholds[-1] + 1e6, 0.0, np.nan, np.inf],
                    ]
                )
                picked = rng.integers(0, count, count // 4)
                probes[picked, feature] = rng.choice(edges, len(picked))
        return probes


def compile_trees(
    booster: lgb.Booster,
    *,
    block_trees: int = BLOCK_TREES,
    max_table_bytes: int = MAX_TABLE_BYTES,
) -> CompiledTrees:
    """Lookup tables of `booster`'s trees; raise NotCompilableError naming what is not supported."""
    model = booster.dump_model()
    if model.get("num_tree_per_iteration", 1) != 1:
        raise NotCompilableError("more than one tree per iteration (multiclass)")
    if model.get("average_output"):
        raise NotCompilableError("averaged trees (random forest mode)")
    trees = model.get("tree_info", [])
    if not trees:
        raise NotCompilableError("the model has no trees")
    widest = max(tree["num_leaves"] for tree in trees)
    if widest > MAX_LEAVES:
        raise NotCompilableError(f"trees of {widest} leaves (at most {MAX_LEAVES})")
    num_features = int(model["max_feature_idx"]) + 1
    dtype = np.uint32 if widest <= 32 else np.uint64
    size = -(-len(trees) // -(-len(trees) // block_trees))  # equal blocks
    blocks = tuple(
        _compile_block(trees[start : start + size], widest, dtype)
        for start in range(0, len(trees), size)
    )
    table_bytes = sum(block.table.nbytes + block.slot_values.nbytes for block in blocks)
    if table_bytes > max_table_bytes:
        raise NotCompilableError(
            f"tables of {table_bytes / 2**20:.0f} MiB (at most {max_table_bytes / 2**20:.0f})"
        )
    return CompiledTrees(num_features, len(trees), table_bytes, blocks)


def _compile_block(trees: list[dict[str, Any]], widest: int, dtype: type) -> _Block:
    splits: dict[int, list[tuple[float, int, int]]] = {}  # feature -> (threshold, tree, mask)
    leaf_values = np.zeros((len(trees), widest))
    for tree_index, tree in enumerate(trees):
        leaves: list[float] = []
        _collect(tree["tree_structure"], tree_index, leaves, splits)
        leaf_values[tree_index, : len(leaves)] = leaves
    full = int(np.iinfo(dtype).max)
    features = tuple(sorted(splits))
    thresholds, tables, offsets, offset = [], [], [], 0
    for feature in features:
        # Splits share thresholds (LightGBM splits at bin edges: at most max_bin per
        # feature), so a prefix ends at each distinct threshold, not at each split.
        distinct = np.unique([split[0] for split in splits[feature]])
        prefix: np.ndarray = np.full((len(distinct) + 1, len(trees)), full, dtype=dtype)
        for threshold, tree_index, mask in splits[feature]:
            row = int(np.searchsorted(distinct, threshold)) + 1
            prefix[row, tree_index] &= dtype(mask & full)
        prefix = np.bitwise_and.accumulate(prefix, axis=0)
        thresholds.append(distinct.astype(np.float64))
        tables.append(prefix)
        offsets.append(offset)
        offset += len(prefix)
    if not features:  # every tree is a single leaf: one all-ones row
        tables.append(np.full((1, len(trees)), full, dtype=dtype))
        features, thresholds, offsets = (0,), [np.array([np.inf])], [0]
    multiplier, shift = _DE_BRUIJN[dtype]
    slots = 1 << (np.dtype(dtype).itemsize * 8 - shift)
    slot_values = np.zeros((len(trees), slots))
    for leaf in range(widest):
        slot = ((multiplier << leaf) & full) >> shift
        slot_values[:, slot] = leaf_values[:, leaf]
    return _Block(
        features=features,
        thresholds=tuple(thresholds),
        offsets=np.array(offsets, dtype=np.intp)[:, None],
        table=np.ascontiguousarray(np.concatenate(tables)),
        de_bruijn=(dtype(multiplier), shift),
        slot_base=(np.arange(len(trees)) * slots).astype(dtype),
        slot_values=slot_values.ravel(),
    )


def _collect(
    node: dict[str, Any],
    tree_index: int,
    leaves: list[float],
    splits: dict[int, list[tuple[float, int, int]]],
) -> range:
    """Number the leaves under `node` left to right; record its splits; return its leaves."""
    if "split_index" not in node:
        if "leaf_const" in node or "leaf_coeff" in node:
            raise NotCompilableError("linear trees (a linear model in each leaf)")
        leaves.append(float(node["leaf_value"]))
        return range(len(leaves) - 1, len(leaves))
    if node.get("decision_type") != "<=":
        raise NotCompilableError(
            f"a categorical split (decision type {node.get('decision_type')!r})"
        )
    if node.get("missing_type", "None") != "None":
        raise NotCompilableError(f"a missing-value branch (missing type {node['missing_type']!r})")
    left = _collect(node["left_child"], tree_index, leaves, splits)
    right = _collect(node["right_child"], tree_index, leaves, splits)
    mask = _ALL_BITS
    for leaf in left:
        mask &= ~(1 << leaf)
    splits.setdefault(int(node["split_feature"]), []).append(
        (float(node["threshold"]), tree_index, mask)
    )
    return range(left.start, right.stop)
