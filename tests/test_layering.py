"""Imports point one way: activations → models → train → experiments → cli; data, config, results are
leaves; analysis reads results only and never imports torch. Checked by walking every import with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "actlab"

# package (first component under actlab) → the actlab packages it may import
ALLOWED: dict[str, set[str]] = {
    "activations": set(),
    "data": set(),
    "config": set(),
    "results": set(),
    "allocator": set(),
    "models": {"activations"},
    "train": {"activations", "models", "data", "config", "results"},
    "analysis": {"results"},
    "experiments": {"activations", "models", "data", "config", "results", "train", "analysis"},
    "bench": {"activations", "models", "train", "data", "config", "allocator"},
    "cli": {
        "activations",
        "models",
        "data",
        "config",
        "results",
        "train",
        "experiments",
        "allocator",
        "analysis",
        "bench",
    },
    "__init__": set(),  # lazy attributes only (importlib strings, not imports)
}
NO_TORCH = {"analysis", "results", "config", "allocator"}


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = path.relative_to(SRC.parent).with_suffix("").parts[: -node.level]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


FILES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_one_way(path):
    package = _package(path)
    assert package in ALLOWED, f"new top-level module {package}: add it to the layering rules"
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "actlab" or len(parts) == 1:
            continue
        target = parts[1]
        assert target == package or target in ALLOWED[package], (
            f"{path.name}: {package} must not import {name}"
        )
        if package in NO_TORCH:
            assert not name.startswith("torch"), f"{path.name} imports torch"


@pytest.mark.parametrize("path", [p for p in FILES if _package(p) in NO_TORCH], ids=lambda p: p.name)
def test_leaves_without_torch(path):
    assert not any(n == "torch" or n.startswith("torch.") for n in _imports(path)), path
