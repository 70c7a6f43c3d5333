"""Which hierarchy nodes a user may see in live risk.

A node's figures aggregate every position under it, so a user may see a node only when their principal admits
every (desk, book, trader) leaf under it (`Principal.admits` on the leaf's attributes: the store's row filter,
the same predicate reports compile to SQL). A trader of one desk sees that desk and everything below it, never
the firm (its numbers include other desks); a user whose roles admit every row sees every node.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..domain import FIRM
from ..store import Principal

__all__ = ["NodeAccess", "TreeNode", "row_filter_key"]

LEVELS = ("desk", "book", "trader")


@dataclass(frozen=True)
class TreeNode:
    id: str
    name: str
    level: str
    parent: str | None
    positions: int


def row_filter_key(principal: Principal) -> tuple[object, ...]:
    """The principal's row filter in a canonical, hashable form: principals with equal keys see the same rows."""
    return tuple(
        sorted(
            tuple(sorted((c, tuple(sorted(v))) for c, v in cl.items())) for cl in principal.row_predicate()
        )
    )


class NodeAccess:
    """The hierarchy of a portfolio's positions and each principal's visible nodes (cached per row filter)."""

    def __init__(self, desks: list[str], books: list[str], traders: list[str]) -> None:
        leaves = Counter(zip(desks, books, traders, strict=True))
        self.leaves: dict[tuple[str, str, str], int] = dict(sorted(leaves.items()))
        counts: Counter[str] = Counter()
        parents: dict[str, str | None] = {FIRM: None}
        #: node id -> the leaves under it
        self.under: dict[str, list[tuple[str, str, str]]] = {FIRM: []}
        for leaf, n in self.leaves.items():
            path = FIRM
            counts[FIRM] += n
            self.under[FIRM].append(leaf)
            for depth in range(3):
                child = f"{path}/{leaf[depth]}"
                parents.setdefault(child, path)
                self.under.setdefault(child, []).append(leaf)
                counts[child] += n
                path = child
        self.nodes: list[TreeNode] = [
            TreeNode(
                node,
                node.rsplit("/", 1)[-1],
                "firm" if node == FIRM else LEVELS[node.count("/") - 1],
                parents[node],
                counts[node],
            )
            for node in sorted(self.under, key=lambda n: (n.count("/"), n))
        ]
        self._cache: dict[tuple[object, ...], frozenset[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of_positions(cls, positions: Any) -> NodeAccess:
        """From a `PositionTable` (anything with ``attribute(name)`` giving an array)."""
        get = positions.attribute
        return cls(
            [str(x) for x in get("desk").tolist()],
            [str(x) for x in get("book").tolist()],
            [str(x) for x in get("trader").tolist()],
        )

    def visible(self, principal: Principal) -> frozenset[str]:
        """Ids of the nodes ``principal`` may see (parents before children in `nodes` order)."""
        key = row_filter_key(principal)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        admitted = {
            leaf: principal.admits({"desk": leaf[0], "book": leaf[1], "trader": leaf[2]})
            for leaf in self.leaves
        }
        seen = frozenset(
            node for node, leaves in self.under.items() if leaves and all(admitted[x] for x in leaves)
        )
        with self._lock:
            self._cache[key] = seen
        return seen
