"""No import cycles in the package, also none hidden inside functions: the graph of every
``scenesearch`` module's imports (module-level and function-level alike, read with ast)
has no cycle, and every indexer module imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGES = {  # folder → installed name
    "indexer": "scenesearch.indexer",
    "search": "scenesearch.search",
    "ui": "scenesearch.ui",
    "eval": "scenesearch.eval",
}


def module_names(folder: str) -> dict[str, str]:
    """Installed module name → source path for every module under ``folder``."""
    out = {}
    for p in sorted((REPO / folder).rglob("*.py")):
        rel = p.relative_to(REPO / folder).with_suffix("")
        parts = [x for x in rel.parts if x != "__init__"]
        out[".".join([PACKAGES[folder], *parts])] = str(p)
    return out


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """module → the project modules it imports anywhere in its source (functions included)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(Path(path).read_text(), path)
        deps: set[str] = set()
        is_pkg = path.endswith("__init__.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                # "from pkg import mod" names a module; "from mod import name" names the module
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):  # a package's own parents
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_a_hidden_cycle():
    """The check can fail: a function-level import back into its importer is a cycle."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_across_the_package():
    """search, ui and eval too (ui ↔ cli_search and bench.stills ↔ stills_report had some)."""
    modules = {n: p for folder in PACKAGES for n, p in module_names(folder).items()}
    graph = import_graph(modules)
    assert {"scenesearch.ui.app", "scenesearch.eval.bench.stills"} <= set(graph)
    assert "scenesearch.indexer.catalog" in graph  # the graph is the real tree
    assert "scenesearch.indexer.records" in graph["scenesearch.indexer.pipeline"]
    assert find_cycle(graph) is None, f"import cycle: {' → '.join(find_cycle(graph))}"


def test_every_indexer_module_imports_on_its_own():
    """Each module in a fresh interpreter (an import order that hides a cycle shows up here)."""
    names = sorted(module_names("indexer"))
    code = (
        "import importlib, subprocess, sys\n"
        "bad = []\n"
        "for n in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {n}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode: bad.append(n + ': ' + r.stderr.strip().splitlines()[-1])\n"
        "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
