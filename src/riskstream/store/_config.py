"""Store configuration: ``<root>/store.yaml`` (tiers, retention, catalog URL, pre-aggregations, webhooks).

A store root is a local folder or an object-store URL (``s3://bucket/prefix``); for an object store, credentials
and endpoint go in ``storage_options`` (passed to deltalake as is, e.g. ``AWS_REGION``, ``AWS_ENDPOINT_URL``,
``AWS_ALLOW_HTTP``) and the configuration and staging stay in a local ``root``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigurationError

__all__ = ["DEFAULT_PREAGGREGATIONS", "PreaggSpec", "StoreConfig"]

CONFIG_FILE = "store.yaml"
#: Dimensions a pre-aggregation may group by: the risk_results columns that make sense as a pivot axis.
PREAGG_DIMENSIONS = frozenset(
    {
        "business_date",
        "namespace",
        "desk",
        "book",
        "trader",
        "trade_id",
        "measure",
        "currency",
        "instrument_type",
        "counterparty",
        "sector",
        "region",
    }
)


@dataclass(frozen=True)
class PreaggSpec:
    """One pre-aggregation grain: a Delta table summing ``value`` (and ``pnl_vector``) by ``dimensions``.

    ``dimensions`` must start with ``business_date`` and ``namespace`` (the partitions a commit rebuilds).
    """

    name: str
    dimensions: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum():
            raise ConfigurationError("preaggregations.name", self.name, "use letters, digits and '_'")
        dims = tuple(self.dimensions)
        object.__setattr__(self, "dimensions", dims)
        if dims[:2] != ("business_date", "namespace"):
            raise ConfigurationError(
                f"preaggregations.{self.name}.dimensions",
                list(dims),
                "must start with business_date, namespace",
            )
        unknown = [d for d in dims if d not in PREAGG_DIMENSIONS]
        if unknown or len(set(dims)) != len(dims):
            raise ConfigurationError(
                f"preaggregations.{self.name}.dimensions",
                unknown or list(dims),
                f"unknown or repeated dimension (known: {', '.join(sorted(PREAGG_DIMENSIONS))})",
            )


#: The default grains: the risk hierarchy's levels (firm → desk → book → trader) by measure, so pivots by desk or
#: book and hierarchy reports down to traders (VaR/ES from summed vectors included) never scan the trades.
DEFAULT_PREAGGREGATIONS: tuple[PreaggSpec, ...] = (
    PreaggSpec(
        "desk_book_trader_measure", ("business_date", "namespace", "desk", "book", "trader", "measure")
    ),
    PreaggSpec("desk_book_measure", ("business_date", "namespace", "desk", "book", "measure")),
    PreaggSpec("desk_measure", ("business_date", "namespace", "desk", "measure")),
)


@dataclass(frozen=True)
class StoreConfig:
    """What ``store.yaml`` holds.

    Attributes
    ----------
    hot_days
        Business days a partition stays in the hot tier before `RiskStore.tier` moves it to the cold root.
    cold_root
        Cold-tier root: relative to the store root, absolute, or an ``s3://`` URL.
    retention_years
        Partitions whose business date is older than this many years are deleted by `RiskStore.vacuum`.
    vacuum_retention_hours
        Data files no longer referenced by the Delta log for this long are removed by `RiskStore.vacuum`
        (time travel to versions older than that stops working).
    catalog_url
        SQLAlchemy URL of the catalog; ``None`` = ``sqlite:///<root>/catalog.db`` (env RISKSTREAM_CATALOG_URL wins).
    tables_root
        Where the Delta tables live: ``None`` = ``<root>/tables``; or an absolute path / ``s3://`` URL.
    storage_options
        deltalake storage options for object-store roots (credentials, endpoint, region).
    preaggregations
        The grains maintained on commit.
    webhooks
        URLs that receive a JSON POST for every committed job (the catalog's webhooks are added to these).
    commit_retries
        Attempts of a commit that conflicts with a concurrent one before `CommitConflictError`.
    """

    hot_days: int = 5
    cold_root: str = "cold"
    retention_years: int = 7
    vacuum_retention_hours: int = 168
    catalog_url: str | None = None
    tables_root: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)
    preaggregations: tuple[PreaggSpec, ...] = DEFAULT_PREAGGREGATIONS
    webhooks: tuple[str, ...] = ()
    commit_retries: int = 20

    def __post_init__(self) -> None:
        for name in ("hot_days", "retention_years", "vacuum_retention_hours", "commit_retries"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (1 if name in ("commit_retries", "retention_years") else 0):
                raise ConfigurationError(name, v, "must be a non-negative integer")
        names = [p.name for p in self.preaggregations]
        if len(set(names)) != len(names):
            raise ConfigurationError("preaggregations", names, "names must be unique")
        object.__setattr__(self, "webhooks", tuple(self.webhooks))
        object.__setattr__(self, "preaggregations", tuple(self.preaggregations))

    def to_dict(self) -> dict[str, Any]:
        return {
            "hot_days": self.hot_days,
            "cold_root": self.cold_root,
            "retention_years": self.retention_years,
            "vacuum_retention_hours": self.vacuum_retention_hours,
            "catalog_url": self.catalog_url,
            "tables_root": self.tables_root,
            "storage_options": dict(self.storage_options),
            "preaggregations": [
                {"name": p.name, "dimensions": list(p.dimensions)} for p in self.preaggregations
            ],
            "webhooks": list(self.webhooks),
            "commit_retries": self.commit_retries,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreConfig:
        known = set(cls().to_dict())
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(
                CONFIG_FILE, unknown[0], f"unknown key (known: {', '.join(sorted(known))})"
            )
        kwargs = dict(data)
        if "preaggregations" in kwargs:
            kwargs["preaggregations"] = tuple(_preagg(p) for p in kwargs["preaggregations"] or ())
        if "webhooks" in kwargs:
            kwargs["webhooks"] = tuple(kwargs["webhooks"] or ())
        if kwargs.get("storage_options") is None:
            kwargs.pop("storage_options", None)
        return cls(**kwargs)

    @classmethod
    def load_or_create(cls, root: Path) -> StoreConfig:
        """Read ``<root>/store.yaml``; write the defaults there first if it does not exist."""
        path = root / CONFIG_FILE
        if not path.exists():
            config = cls()
            config.save(root)
            return config
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(str(path), "yaml", f"cannot be parsed: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(str(path), type(data).__name__, "must hold a mapping")
        return cls.from_dict(data)

    def save(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{CONFIG_FILE}.tmp"
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(root / CONFIG_FILE)


def _preagg(p: Any) -> PreaggSpec:
    if isinstance(p, PreaggSpec):
        return p
    if not isinstance(p, Mapping) or "name" not in p or "dimensions" not in p:
        raise ConfigurationError("preaggregations", p, "each needs 'name' and 'dimensions'")
    dims: Sequence[str] = p["dimensions"]
    return PreaggSpec(str(p["name"]), tuple(str(d) for d in dims))
