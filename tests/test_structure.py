"""The library's shape: data flows one way through its modules, and no class grows past a screenful."""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "training"
#: Lowest first: a module may import only modules before it (faces last).
FLOW = [
    "errors",
    "config",
    "files",
    "scores",
    "card",
    "clean",
    "corpus",
    "features.hashing",
    "features.pool",
    "features.boilerplate",
    "features.weights",
    "features",
    "classifier",
    "explain",
    "model",
    "recipe",
    "autotune",
    "streaming",
    "trainer",
    "predict",
    "output",
    "evaluation",
    "report",
    "progress",
    "cli",
    "serve",
    "cluster",
]
MAX_CLASS_LINES = 120


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The package's modules that `path` imports at its top level (lazy imports inside functions are faces')."""
    here = module_name(path).split(".") if path.name != "__init__.py" else module_name(path).split(".") + [""]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - node.level]
            target = ".".join(filter(None, [*base, node.module or ""]))
            names = [target] if node.module else [f"{target}.{alias.name}".lstrip(".") for alias in node.names]
            found.update(name for name in names if name)
    return found


SOURCES = [path for path in sorted(PACKAGE.rglob("*.py")) if module_name(path) not in ("", "default_model")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: module_name(path))
def test_no_module_imports_one_later_in_the_flow(path):
    name = module_name(path)
    assert name in FLOW, f"{name} has no place in FLOW"
    for imported in imported_modules(path):
        assert FLOW.index(imported) < FLOW.index(name), f"{name} imports {imported}, which comes later"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: module_name(path))
def test_no_class_is_longer_than_a_screenful(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, f"{node.name} in {path.name}"
