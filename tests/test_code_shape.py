"""The shape rules the project keeps: short functions, no import cycles, no sys.path tricks, one catalogue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("denoising", "dashboard", "scripts")
MAX_FUNCTION_LINES = 80


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules imported anywhere in ``path`` (deferred imports inside functions included)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _package_graph() -> dict[str, set[str]]:
    files = _python_files(*PACKAGES)
    known = {_module_name(p) for p in files}
    # a package's __init__ is imported by every submodule import; leave that edge out, it is not a cycle
    return {_module_name(p): {m for m in _imports(p, known) if not _module_name(p).startswith(m + ".")}
            for p in files}


def test_no_import_cycle_anywhere():
    graph = _package_graph()
    assert "denoising.registry" in graph and "denoising.models.learned" in graph["denoising.registry"]
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_sys_path_insert_in_repo_code():
    offenders = [str(p.relative_to(REPO)) for p in _python_files(*PACKAGES, "tests")
                 if re.search(r"sys\.path\.(insert|append)", p.read_text(encoding="utf-8"))
                 and p.name != Path(__file__).name]
    assert offenders == []


@pytest.mark.parametrize("folder", PACKAGES)
def test_no_function_over_the_limit(folder):
    long = []
    for path in _python_files(folder):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_library_never_imports_streamlit_or_prints():
    for path in _python_files("denoising"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "streamlit" for n in names), path
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                raise AssertionError(f"print() in library module {path.relative_to(REPO)}:{node.lineno}")


def test_labels_are_not_retyped_outside_the_catalogue():
    """Every display label lives in denoising/catalogue.py only."""
    from denoising import catalogue

    labels = [*catalogue.NOISE_LABELS.values(), *catalogue.METRIC_LABELS.values(), *catalogue.TEST_SET_TITLES.values(),
              *(info.display_name for info in catalogue.METHODS.values())]
    copies = []
    for path in _python_files(*PACKAGES):
        if path.name == "catalogue.py":
            continue
        text = path.read_text(encoding="utf-8")
        copies += [f"{path.relative_to(REPO)}: {label!r}" for label in labels
                   if f'"{label}"' in text or f"'{label}'" in text]
    assert copies == []
