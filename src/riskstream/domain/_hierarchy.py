"""The book hierarchy firm → desk → book → trader, as node ids and index arrays for vectorised aggregation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigurationError

__all__ = ["DEFAULT_LEVELS", "FIRM", "Hierarchy"]

FIRM = "FIRM"
#: Levels below the firm, top-down; a node id is the path of names, e.g. ``FIRM/Rates/RATES-EUR/tkato``.
DEFAULT_LEVELS: tuple[str, ...] = ("desk", "book", "trader")


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values (as str) and the code of each element: a dict pass, then a sort of the few uniques.

    Hashing is linear in the number of positions, where ``np.unique`` on strings sorts them all.
    """
    seen: dict[object, int] = {}
    first_codes = np.fromiter((seen.setdefault(v, len(seen)) for v in values.tolist()), np.int64, len(values))
    labels = np.array([str(v) for v in seen], dtype=str)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return labels[order], rank[first_codes]


@dataclass(frozen=True)
class Hierarchy:
    """Nodes of a hierarchy over positions.

    Attributes
    ----------
    levels
        Attribute names below the firm, top-down (default desk, book, trader).
    node_ids
        Every node, parents before children; node 0 is the firm.
    node_level
        Depth of each node: 0 firm, 1 the first level, ...
    parent
        Index of each node's parent (−1 for the firm).
    position_node
        Shape (depth, n_positions): the node at each level that each position belongs to (row 0: the firm).
    """

    levels: tuple[str, ...]
    node_ids: tuple[str, ...]
    node_level: np.ndarray
    parent: np.ndarray
    position_node: np.ndarray

    @classmethod
    def build(
        cls, attributes: Mapping[str, np.ndarray] | Any, levels: Sequence[str] = DEFAULT_LEVELS
    ) -> Hierarchy:
        """Build from per-position attribute columns (a mapping name → array, or a PositionTable)."""
        cols: Mapping[str, np.ndarray] = getattr(attributes, "attributes", attributes)
        levels = tuple(levels)
        for name in levels:
            if name not in cols:
                raise ConfigurationError("by", name, "not a position attribute")
        n = len(next(iter(cols.values()))) if levels else 0
        node_ids: list[str] = [FIRM]
        node_level = [0]
        parent = [-1]
        position_node = np.zeros((len(levels) + 1, n), dtype=np.int64)
        prefix_node = np.zeros(n, dtype=np.int64)
        prefix_names = [FIRM]
        for depth, name in enumerate(levels, start=1):
            # factorise the level's names once, then find the distinct (parent node, name) pairs as integers:
            # sorting a million integer keys is far cheaper than sorting a million path strings
            names, codes = _factorize(np.asarray(cols[name]))
            key = prefix_node * len(names) + codes.astype(np.int64)
            uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            base = len(node_ids)
            parents = prefix_node[first]
            labels = names[codes[first]]
            paths = [
                f"{prefix_names[p - (base - len(prefix_names))]}/{lab}"
                for p, lab in zip(parents, labels, strict=True)
            ]
            node_ids.extend(paths)
            node_level.extend([depth] * len(uniq))
            parent.extend(parents.tolist())
            prefix_node = base + inverse.astype(np.int64)
            position_node[depth] = prefix_node
            prefix_names = paths
        return cls(
            levels, tuple(node_ids), np.array(node_level), np.array(parent, dtype=np.int64), position_node
        )

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def depth(self) -> int:
        return len(self.levels)

    def level_name(self, depth: int) -> str:
        return "firm" if depth == 0 else self.levels[depth - 1]

    def children(self, node: int) -> np.ndarray:
        return np.flatnonzero(self.parent == node)

    def index(self, node_id: str) -> int:
        try:
            return self.node_ids.index(node_id)
        except ValueError:
            raise ConfigurationError("node", node_id, "no such node in the hierarchy") from None

    def positions_under(self, node: int) -> np.ndarray:
        """Indices of the positions below ``node``."""
        return np.flatnonzero(self.position_node[int(self.node_level[node])] == node)
