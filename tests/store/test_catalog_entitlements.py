"""Entitlement matrix, property-based: random roles, groups and users through a real (in-memory SQLite) catalog.

The reference is the definition itself, evaluated by brute force over every row of a small universe: a row is
visible when ANY of the user's roles admits it, a role admitting a row when EVERY column of its filter holds an
allowed value (no filter = every row); a column is masked when EVERY role masks it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskstream.errors import AccessDeniedError, InvalidFieldError
from riskstream.store._catalog import Catalog
from riskstream.store._entitlements import Principal, RoleDefinition, combine_roles

DOMAIN = {"desk": ("RATES", "FX", "PRIME"), "region": ("EMEA", "AMER"), "sector": ("Tech", "Energy")}
MASKABLE = ("counterparty", "sector", "region")
# every row of the universe, plus rows with a value outside the domain and with a filtered column missing
UNIVERSE = [dict(zip(DOMAIN, values, strict=True)) for values in itertools.product(*DOMAIN.values())] + [
    {"desk": "CREDIT", "region": "EMEA", "sector": "Tech"},
    {"region": "EMEA", "sector": "Tech"},
]

row_filters = st.one_of(
    st.none(),
    st.sets(st.sampled_from(sorted(DOMAIN)), min_size=1).flatmap(
        lambda cols: st.fixed_dictionaries(
            {c: st.lists(st.sampled_from(DOMAIN[c]), min_size=1, unique=True) for c in sorted(cols)}
        )
    ),
)
role_specs = st.tuples(row_filters, st.lists(st.sampled_from(MASKABLE), unique=True))


def brute_force_admits(filters: list[Mapping[str, list[str]] | None], row: Mapping[str, str]) -> bool:
    return any(f is None or all(row.get(c) in vs for c, vs in f.items()) for f in filters)


@settings(max_examples=40, deadline=None)
@given(
    roles=st.lists(role_specs, min_size=1, max_size=5),
    memberships=st.lists(
        st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True), min_size=1, max_size=4
    ),
)
def test_principal_matches_the_brute_force_definition(
    roles: list[tuple[Mapping[str, list[str]] | None, list[str]]], memberships: list[list[int]]
) -> None:
    with Catalog("sqlite://") as catalog:
        for i, (row_filter, masked) in enumerate(roles):
            catalog.define_role(f"r{i}", row_filter=row_filter, masked_columns=masked)
            catalog.map_group(f"grp-r{i}", f"r{i}")
        for u, groups in enumerate(memberships):
            catalog.add_user(f"u{u}", [f"grp-r{g}" for g in groups])
        for u, groups in enumerate(memberships):
            held = sorted({g for g in groups if g < len(roles)})
            if not held:
                with pytest.raises(AccessDeniedError):
                    catalog.principal(f"u{u}")
                continue
            principal = catalog.principal(f"u{u}")
            filters = [roles[g][0] for g in held]
            assert principal.roles == {f"r{g}" for g in held}
            assert principal.masked_columns == set.intersection(*(set(roles[g][1]) for g in held))
            for row in UNIVERSE:
                expected = brute_force_admits(filters, row)
                assert principal.admits(row) == expected, (row, filters)
                # row_predicate is the disjunction the query layer compiles: evaluate it literally
                predicate = principal.row_predicate()
                assert (
                    any(all(row.get(c) in vs for c, vs in clause.items()) for clause in predicate) == expected
                )
                # row_filter alone never shows more than the user may see, and is exact when it says so
                single = principal.row_filter
                alone = single is None or all(row.get(c) in vs for c, vs in single.items())
                assert not alone or expected
                if principal.row_filter_is_exact:
                    assert alone == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(role_specs, min_size=1, max_size=6))
def test_combined_roles_are_simplified_without_changing_what_they_admit(
    roles: list[tuple[Mapping[str, list[str]] | None, list[str]]],
) -> None:
    definitions = [RoleDefinition(f"r{i}", f, frozenset(m)) for i, (f, m) in enumerate(roles)]  # type: ignore[arg-type]
    principal = combine_roles("u", definitions)
    filters = [f for f, _ in roles]
    for row in UNIVERSE:
        assert principal.admits(row) == brute_force_admits(filters, row)
    assert len(principal.row_predicate()) <= len(roles)


# table-driven: (role filters, row, visible) — each case is the definition applied by hand
CASES = [
    ([None], {"desk": "FX"}, True),  # a role without filter sees all
    ([{"desk": ["FX"]}], {"desk": "FX", "region": "EMEA"}, True),
    ([{"desk": ["FX"]}], {"desk": "RATES"}, False),
    ([{"desk": ["FX"], "region": ["EMEA"]}], {"desk": "FX", "region": "AMER"}, False),  # AND across columns
    (
        [{"desk": ["FX"], "region": ["EMEA"]}, {"desk": ["RATES"]}],
        {"desk": "RATES", "region": "AMER"},
        True,
    ),  # OR
    ([{"desk": ["FX"]}, {"region": ["EMEA"]}], {"desk": "PRIME", "region": "EMEA"}, True),
    ([{"desk": ["FX"]}, {"region": ["EMEA"]}], {"desk": "PRIME", "region": "AMER"}, False),
    ([{"desk": ["FX"]}], {"region": "EMEA"}, False),  # the filtered column is missing
    ([{"desk": ["FX"]}], {"desk": None}, False),
    ([{"desk": ["FX"]}, None], {"desk": "PRIME"}, True),  # one unrestricted role opens everything
]


@pytest.mark.parametrize(("filters", "row", "visible"), CASES)
def test_entitlement_cases(
    filters: list[Mapping[str, list[str]] | None], row: dict[str, str], visible: bool
) -> None:
    roles = [RoleDefinition(f"r{i}", f) for i, f in enumerate(filters)]  # type: ignore[arg-type]
    assert combine_roles("u", roles).admits(row) is visible


def test_merged_clauses_and_exact_single_filter() -> None:
    # two desk roles merge into one IN list; a wider role swallows a narrower one
    merged = combine_roles(
        "u",
        [
            RoleDefinition("a", {"desk": frozenset({"FX"})}),
            RoleDefinition("b", {"desk": frozenset({"RATES"})}),
        ],
    )
    assert merged.row_predicate() == [{"desk": frozenset({"FX", "RATES"})}] and merged.row_filter_is_exact
    swallowed = combine_roles(
        "u",
        [
            RoleDefinition("a", {"desk": frozenset({"FX"}), "region": frozenset({"EMEA"})}),
            RoleDefinition("b", {"desk": frozenset({"FX", "RATES"})}),
        ],
    )
    assert swallowed.row_filter == {"desk": frozenset({"FX", "RATES"})}


def test_principal_built_by_hand_follows_the_contract() -> None:
    everyone = Principal("u", frozenset({"r"}), None, frozenset())
    assert everyone.row_predicate() == [{}] and everyone.sees_all_rows and everyone.admits({})
    one = Principal("u", frozenset({"r"}), {"desk": frozenset({"FX"})}, frozenset({"sector"}))
    assert one.row_predicate() == [{"desk": frozenset({"FX"})}] and one.is_masked("sector")
    with pytest.raises(InvalidFieldError, match="row_clauses"):
        Principal("u", frozenset(), None, frozenset(), ({"desk": frozenset({"FX"})},))
    with pytest.raises(AccessDeniedError, match="'u'"):
        combine_roles("u", [])
