"""The layout tells the truth (docs/architecture.md): every import name maps to its folder, imports
run one way (tools -> services -> core; inside the calc-service service -> adapters -> core), no
module imports itself back through others, and modules and functions stay small.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: an import hidden in
a function is still a dependency.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: import name -> folder that holds it; the layers, lowest first
CORE = {"lingtan": ROOT / "lingtan"}
SERVICES = {
    "lingtan_collectors": ROOT / "collectors" / "src" / "lingtan_collectors",
    "lingtan_calc": ROOT / "calc-service" / "src" / "lingtan_calc",
    "lingtan_proxy": ROOT / "auth-proxy" / "src" / "lingtan_proxy",
    "lingtan_notify": ROOT / "notifier" / "src" / "lingtan_notify",
    "lingtan_grafana": ROOT / "grafana" / "src" / "lingtan_grafana",
    "lingtan_influx": ROOT / "influx" / "src" / "lingtan_influx",
}
TOOLS = {"lingtan_tools": ROOT / "tools" / "src" / "lingtan_tools"}
PACKAGES = {**CORE, **SERVICES, **TOOLS}
#: inside the calc-service: the pure core, the adapters, the service (lowest first)
CALC_LAYERS = ("lingtan_calc.core", "lingtan_calc.adapters", "lingtan_calc.service")
#: what the calc core may not touch: storage, HTTP, the web framework, the scheduler's threads
CALC_CORE_FORBIDDEN = ("flask", "sqlalchemy", "requests", "waitress", "threading", "lingtan.influxdb", "lingtan.db",
                       "lingtan.uploads")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _is_test(path: Path) -> bool:
    return path.name.startswith("test_") or path.name == "conftest.py"


def _modules() -> dict[str, Path]:
    found = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if _is_test(path):
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            dotted = ".".join((name, *parts)).removesuffix(".__init__")
            found[dotted] = path
    return found


MODULES = _modules()


def _imports(dotted: str, path: Path) -> set[str]:
    """Every module (project or not) ``dotted`` imports, resolved to the longest known module name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = dotted if path.name == "__init__.py" else dotted.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return out - {dotted}


GRAPH = {dotted: _imports(dotted, path) for dotted, path in MODULES.items()}


def _top(name: str) -> str:
    return name.split(".")[0]


def _layer(name: str) -> int | None:
    top = _top(name)
    return 0 if top in CORE else 1 if top in SERVICES else 2 if top in TOOLS else None


def test_every_import_name_is_its_folder() -> None:
    """``import lingtan_calc`` finds calc-service/src/lingtan_calc/, with no mapping in any pyproject.toml."""
    for name, folder in PACKAGES.items():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not importable"
        assert Path(spec.origin).resolve() == (folder / "__init__.py").resolve(), \
            f"{name} is imported from {spec.origin}, not from {folder}"
    for project in [ROOT / "pyproject.toml", *sorted(ROOT.glob("*/pyproject.toml"))]:
        setuptools = tomllib.loads(project.read_text(encoding="utf-8")).get("tool", {}).get("setuptools", {})
        assert "package-dir" not in setuptools, f"{project.relative_to(ROOT)} maps import names to other folders"


def test_imports_run_down_the_layers() -> None:
    """Tools may import services and the core, services only the core, the core nothing of ours."""
    upward = []
    for module, targets in GRAPH.items():
        for target in targets:
            lower, upper = _layer(module), _layer(target)
            if upper is None or lower is None:
                continue
            if upper > lower or (upper == lower == 1 and _top(target) != _top(module)):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run upward or across services:\n  " + "\n  ".join(sorted(upward))


def test_calc_layers_run_one_way() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        here = next((i for i, layer in enumerate(CALC_LAYERS) if module.startswith(layer + ".")
                     or module == layer), None)
        if here is None:
            continue
        for target in targets:
            there = next((i for i, layer in enumerate(CALC_LAYERS) if target.startswith(layer + ".")
                          or target == layer), None)
            if there is not None and there > here:
                wrong.append(f"{module} -> {target}")
            if here == 0 and any(target == f or target.startswith(f + ".") for f in CALC_CORE_FORBIDDEN):
                wrong.append(f"{module} -> {target} (the core has no I/O)")
    assert not wrong, "\n  ".join(["calc-service imports against its layers:", *sorted(wrong)])


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in GRAPH.get(node, ()):
            if succ not in MODULES:
                continue
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles:\n  " + "\n  ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("dotted", sorted(MODULES))
def test_modules_and_functions_stay_small(dotted: str) -> None:
    path = MODULES[dotted]
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: over {MAX_MODULE_LINES} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_comments_cite_the_repo_not_outside_it() -> None:
    """Code and config point at docs/ or at a standard, never at a file outside the repository."""
    outside = ("../shared", "stack.md", "standards.md", "anchors.md", "style.md")
    hits = []
    for folder in [*PACKAGES.values(), ROOT / "docs", ROOT / "grafana", ROOT / "influx", ROOT / "deploy"]:
        for path in folder.rglob("*"):
            if path.suffix not in {".py", ".md", ".yaml", ".yml", ".ini", ".sh", ".toml", ".iql", ".html"} \
                    and path.name != "Dockerfile":
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            hits += [f"{path.relative_to(ROOT)}: {word}" for word in outside if word in text]
    assert not hits, "references to files outside the repository:\n  " + "\n  ".join(sorted(set(hits)))
