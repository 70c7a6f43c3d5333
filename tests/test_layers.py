"""Imports point only down the layer table of DESIGN.md; this walks the package and fails on an upward import."""

from __future__ import annotations

import ast
from pathlib import Path

import riskstream

PACKAGE_ROOT = Path(riskstream.__file__).parent

# rank: a module may import riskstream modules of the same or a lower rank only.
LAYERS: dict[str, int] = {
    "errors": 0,
    "domain": 1,
    "pricing": 2,
    "scenarios": 2,
    "risk": 3,
    "bus": 3,
    "marketdata": 3,
    "refdata": 3,
    "engine": 4,
    "store": 4,
    "query": 4,
    "grid": 4,
    "api": 5,
    "web": 5,
    "cli": 5,
    "__main__": 5,
}
# adapters sit beside risk in rank but may import the domain only (DESIGN.md: adapters → domain).
ADAPTERS = {"bus", "marketdata", "refdata"}
ADAPTER_ALLOWED = {"errors", "domain"}


def _top(module_path: Path) -> str:
    rel = module_path.relative_to(PACKAGE_ROOT)
    return rel.parts[0].removesuffix(".py")


def _imported_tops(tree: ast.AST, own_package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "riskstream" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == "riskstream":
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names)
            elif node.level == 1:
                found.add(own_package)
            elif node.level >= 2 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level >= 2:
                found.update(a.name for a in node.names)
    return found


def test_every_package_is_in_the_layer_table() -> None:
    tops = {_top(p) for p in PACKAGE_ROOT.rglob("*.py")} - {"__init__"}
    assert tops <= set(LAYERS), f"add these to the layer table: {sorted(tops - set(LAYERS))}"


def test_imports_point_down_the_layer_table() -> None:
    violations = []
    for path in PACKAGE_ROOT.rglob("*.py"):
        top = _top(path)
        if top == "__init__":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for imported in _imported_tops(tree, top):
            if imported not in LAYERS or imported == top:
                continue
            if top in ADAPTERS:
                ok = imported in ADAPTER_ALLOWED
            else:
                ok = LAYERS[imported] <= LAYERS[top] and not (imported in ADAPTERS and LAYERS[top] <= 3)
            if not ok:
                violations.append(f"{path.relative_to(PACKAGE_ROOT)} imports riskstream.{imported}")
    assert not violations, "upward imports:\n" + "\n".join(sorted(violations))


def test_layer_check_catches_an_upward_import() -> None:
    tree = ast.parse("from riskstream.engine import x\nfrom ..cli import main\n")
    assert _imported_tops(tree, "domain") == {"engine", "cli"}
