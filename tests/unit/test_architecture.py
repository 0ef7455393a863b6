"""The layout's rules, checked on the source: the import graph (every import, at module level or
inside a function) has no cycle; only the CLI knows Typer and rich, prints or exits; only the web
layer knows FastAPI and Starlette; test modules share code through tests/support only."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
TESTS = ROOT / "tests"


def modules(base: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((base / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module name an import statement in the file names, with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base, node.lineno
            for alias in node.names:  # `from registrar.x import y` may name a module y
                yield f"{base}.{alias.name}", node.lineno


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of `known` it imports."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for name, _line in imported(module, path):
            target = resolve(name)
            if target is not None and target != module:
                edges[module].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


REGISTRAR = modules(SRC, "registrar")


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offenders(allowed: Callable[[str], bool], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module}:{line} imports {name}"
        for module, path in REGISTRAR.items()
        if not allowed(module)
        for name, line in imported(module, path)
        if any(in_package(name, f) for f in forbidden)
    ]


def test_the_tree_is_read() -> None:
    # A walk that found nothing would pass every test below.
    assert {"registrar.app", "registrar.cli.main", "registrar.tasks.worker"} <= set(REGISTRAR)
    assert len(REGISTRAR) > 80


def test_no_import_cycle_among_registrar_modules() -> None:
    assert cycles(graph(REGISTRAR)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_cli_knows_typer_rich_and_the_cli() -> None:
    def cli(module: str) -> bool:  # `python -m registrar` is the command too
        return in_package(module, "registrar.cli") or module == "registrar.__main__"

    assert offenders(cli, ("typer", "rich", "registrar.cli", "click")) == []


def test_only_the_cli_prints_or_exits() -> None:
    found = []
    for module, path in REGISTRAR.items():
        if in_package(module, "registrar.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("print", "exit", "quit", "sys.exit", "os._exit"):
                    found.append(f"{module}:{node.lineno} calls {name}")
    assert found == []


def test_only_the_web_layer_knows_fastapi_and_starlette() -> None:
    """Routes parse and answer; services, repositories, jobs and the base layers take and return
    plain values, so they run the same from a route, a task or the CLI."""

    def web(module: str) -> bool:
        return (
            module == "registrar.app"
            or in_package(module, "registrar.http")
            or module.endswith(".router")
        )

    assert offenders(web, ("fastapi", "starlette", "registrar.http", "registrar.app")) == []


def test_test_modules_share_code_through_support_only() -> None:
    found = []
    for module, path in modules(ROOT, "tests").items():
        for name, line in imported(module, path):
            if in_package(name, "tests") and not in_package(name, "tests.support"):
                found.append(f"{module}:{line} imports {name}")
    assert found == []
