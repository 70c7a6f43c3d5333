"""Aggregation of leaf P&L vectors published by several streaming engines (disjoint books) up the hierarchy."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from ..domain import FIRM, RiskSnapshot
from ..errors import ConfigurationError, InvalidFieldError
from ..risk import var_and_es
from ._stream_config import StreamConfig

__all__ = ["Aggregator"]


class Aggregator:
    """Sums the leaf vectors of several workers into every ancestor node and computes VaR/ES there.

    Leaf ids are hierarchy paths (``FIRM/<desk>/<book>/<trader>``); a node's vector is the sum of the vectors of
    the leaves under it across all workers (VaR is not additive, P&L vectors are), and its VaR/ES come from that
    sum. Each :meth:`update` replaces everything the worker published before.
    """

    def __init__(self, config: StreamConfig | None = None) -> None:
        self.config = config or StreamConfig()
        self._vectors: dict[str, dict[str, np.ndarray]] = {}
        self._values: dict[str, Mapping[str, Mapping[str, float]]] = {}
        self._n_scenarios: int | None = None

    def update(
        self,
        worker: str,
        leaf_vectors: Mapping[str, np.ndarray],
        leaf_values: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Replace ``worker``'s leaves: leaf id → scenario P&L vector, and optional additive measures
        (leaf id → ``{"pv": ..., "n_positions": ...}``) that are summed the same way."""
        vectors: dict[str, np.ndarray] = {}
        for leaf, vec in leaf_vectors.items():
            if not (leaf == FIRM or leaf.startswith(FIRM + "/")):
                raise InvalidFieldError("leaf", leaf, f"a node id starts with {FIRM!r}")
            v = np.asarray(vec, dtype=np.float64)
            if v.ndim != 1:
                raise InvalidFieldError(leaf, v.shape, "a leaf vector is one-dimensional")
            if self._n_scenarios is None:
                self._n_scenarios = len(v)
            elif len(v) != self._n_scenarios:
                raise InvalidFieldError(leaf, len(v), f"expected {self._n_scenarios} scenarios")
            vectors[leaf] = v
        self._vectors[worker] = vectors
        self._values[worker] = dict(leaf_values or {})

    def _tree(self) -> tuple[list[str], sp.csr_matrix, np.ndarray, list[str]]:
        leaves = sorted({leaf for vecs in self._vectors.values() for leaf in vecs})
        index: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for j, leaf in enumerate(leaves):
            parts = leaf.split("/")
            for depth in range(1, len(parts) + 1):
                node = "/".join(parts[:depth])
                rows.append(index.setdefault(node, len(index)))
                cols.append(j)
        nodes = list(index)
        order = sorted(range(len(nodes)), key=lambda i: (nodes[i].count("/"), nodes[i]))
        rank = np.empty(len(nodes), dtype=np.int64)
        rank[order] = np.arange(len(nodes))
        matrix = sp.csr_matrix((np.ones(len(rows)), (rank[rows], cols)), shape=(len(nodes), len(leaves)))
        stacked = np.zeros((len(leaves), self._n_scenarios or 0))
        at = {leaf: j for j, leaf in enumerate(leaves)}
        for vecs in self._vectors.values():
            for leaf, v in vecs.items():
                stacked[at[leaf]] += v
        return [nodes[i] for i in order], matrix, stacked, leaves

    def node_vector(self, node: str) -> np.ndarray:
        """Summed scenario P&L vector of ``node`` over every worker."""
        nodes, matrix, stacked, _ = self._tree()
        try:
            n = nodes.index(node)
        except ValueError:
            raise ConfigurationError("node", node, "no such node in the aggregate") from None
        return np.asarray(matrix[[n]] @ stacked)[0]

    def snapshots(self, as_of_us: int) -> list[RiskSnapshot]:
        """One snapshot per node (parents first): VaR/ES from the summed vectors, and the summed additive
        measures the workers sent."""
        if not self._vectors or self._n_scenarios is None:
            return []
        cfg = self.config
        nodes, matrix, stacked, leaves = self._tree()
        vectors = np.asarray(matrix @ stacked)
        var, es = var_and_es(vectors, cfg.confidence, cfg.es_confidence, cfg.rule)
        names = sorted({k for vals in self._values.values() for m in vals.values() for k in m})
        extra = np.zeros((len(leaves), len(names)))
        at = {leaf: j for j, leaf in enumerate(leaves)}
        for vals in self._values.values():
            for leaf, m in vals.items():
                if leaf in at:
                    for k, name in enumerate(names):
                        extra[at[leaf], k] += float(m.get(name, 0.0))
        summed = np.asarray(matrix @ extra)
        out = []
        for i, node in enumerate(nodes):
            measures = {cfg.var_name: float(var[i]), cfg.es_name: float(es[i])}
            measures.update({name: float(summed[i, k]) for k, name in enumerate(names)})
            out.append(RiskSnapshot(node, int(as_of_us), measures, {}, cfg.method, 0))
        return out
