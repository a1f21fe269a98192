"""The package's shape: no import cycles, small modules, light top levels."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import charrnn

ROOT = Path(charrnn.__file__).parent
MAX_LINES = 400
REASON = "Longer than 400 lines because"  # a module's docstring must say why it may be


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """charrnn modules that `name` imports anywhere in its file (function-level imports
    included), resolved to modules: `from . import x` is module x when x is one."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("charrnn")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("charrnn"):
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & known
            out |= subs if subs else {target}
    return {m for m in out if m in known and m != name}


def test_no_import_cycles():
    mods = modules()
    graph = {n: imports_of(n, p, set(mods)) for n, p in mods.items()}
    # a submodule's import of its own package's __init__ is how Python loads it, not a dependency
    for n in graph:
        graph[n] = {m for m in graph[n] if not n.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_modules_are_small_or_say_why():
    long = []
    for name, path in modules().items():
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > MAX_LINES and REASON not in doc:
            long.append(f"{name} ({n} lines)")
    assert not long, f"modules over {MAX_LINES} lines without a reason in their docstring: {', '.join(long)}"


def test_light_modules_do_not_import_torch():
    """The registries, the configs and the CLI's top level must not pull in torch
    (nor the CLI's rich UI into the core): `charrnn --help` answers at once."""
    code = (
        "import sys; import charrnn.config, charrnn.models.registry, charrnn.tasks, charrnn.cli; "
        "print(sorted(m for m in ('torch', 'textual', 'numpy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_core_modules_do_not_import_the_ui():
    core = ("charrnn.models", "charrnn.tasks", "charrnn.training", "charrnn.data", "charrnn.config", "charrnn.errors")
    ui = ("typer", "rich", "textual")
    bad = []
    for name, path in modules().items():
        if not name.startswith(core):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{name} imports {n}" for n in names if n.split(".")[0] in ui]
    assert not bad, bad
