"""The package's shape: layers that hold, no import cycles, small modules, light top levels.

The layers, bottom to top (docs/architecture.md, "Layers"):

  spec      config, errors, the two registries (models/registry.py, tasks/__init__.py) and every
            options dataclass (models/options.py, tasks/options.py, tasks/lm_options.py): no torch
  runtime   where a run executes: runtime/hardware.py, runtime/distributed.py
  data, baselines, models, inspect, tasks, training
  faces     views < compare < api < tui < cli: views/ (terminal pictures shared by the faces),
            compare.py (the `charrnn compare` application), api.py (and the package's __init__,
            which defers to it), tui/, cli/ (the program: it launches the TUI)

A module may depend on its own layer and the layers below it; "depend" means any
import (module level or inside a function, absolute or relative) and any string
literal that names a charrnn module. One exception: a spec registry inside a
package names its own package's implementations as lazy "module:Class" strings.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import charrnn

ROOT = Path(charrnn.__file__).parent
LAYERS = ("spec", "runtime", "data", "baselines", "models", "inspect", "tasks", "training",
          "views", "compare", "api", "tui", "cli")  # fmt: skip
SPEC = {  # the torch-free bottom; its modules inside packages are named one by one
    "charrnn.config", "charrnn.errors", "charrnn.spec", "charrnn.runconfig", "charrnn.models.registry", "charrnn.models.options",
    "charrnn.tasks", "charrnn.tasks.options", "charrnn.tasks.lm_options",
}  # fmt: skip
TOP = {"charrnn": "api", "charrnn.__main__": "cli", "charrnn.api": "api", "charrnn.compare": "compare"}
MODULE_STRING = re.compile(r"^(charrnn(?:\.\w+)+)(?::\w+)?$")  # "charrnn.models.rnn:RNNCore"
MAX_LINES = 400
REASON = "Longer than 400 lines because"  # a module's docstring must say why it may be


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(target: str, names: list[str], known: set[str]) -> set[str]:
    """`from target import names` as modules: each name that is a module, else target itself."""
    subs = {f"{target}.{n}" for n in names} & known
    return subs if subs else {target}


def imports_of(name: str, path: Path | None, known: set[str], source: str | None = None) -> set[str]:
    """charrnn modules that `name` imports anywhere in its file (function-level imports
    included), resolved to modules: `from . import x` is module x when x is one."""
    return {m for m, _ in references(name, path, known, source, strings=False)}


def references(name: str, path: Path | None, known: set[str], source: str | None = None,
               strings: bool = True) -> set[tuple[str, str]]:  # fmt: skip
    """(module, how) for every charrnn module that `name` depends on: each import, at
    module level or inside a function, absolute or relative, and (strings=True) each
    string literal that names a module, such as a registry's lazy "charrnn.x.y:Class"."""
    is_package = path is not None and path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):  # type: ignore[union-attr]
        if isinstance(node, ast.Import):
            out |= {(a.name, "import") for a in node.names if a.name.startswith("charrnn")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("charrnn"):
                out |= {(m, "import") for m in _resolve(target, [a.name for a in node.names], known)}
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = MODULE_STRING.match(node.value)
            if m and m.group(1) in known:
                out.add((m.group(1), f"the string {node.value!r}"))
    return {(m, how) for m, how in out if m in known and m != name}


def layer(module: str) -> str:
    if module in SPEC:
        return "spec"
    if module in TOP:
        return TOP[module]
    package = module.split(".")[1]
    assert package in LAYERS, f"{module} is in no layer: add its package to LAYERS in tests/test_package.py"
    return package


def upward(name: str, path: Path | None, known: set[str], source: str | None = None) -> list[str]:
    """What `name` depends on above its own layer, one line each."""
    rank = LAYERS.index(layer(name))
    bad = []
    for m, how in sorted(references(name, path, known, source)):
        if LAYERS.index(layer(m)) <= rank:
            continue
        own = name.split(".")[:2] == m.split(".")[:2] and layer(name) == "spec" and how != "import"
        if not own:  # a spec registry's lazy string for its own package's implementation
            by = "imports" if how == "import" else f"names it in {how}"
            bad.append(f"{name} ({layer(name)}) {by}: {m} ({layer(m)})")
    return bad


def test_no_module_depends_on_a_layer_above_its_own():
    mods = modules()
    known = set(mods)
    bad = [line for n, p in sorted(mods.items()) for line in upward(n, p, known)]
    assert not bad, "upward dependencies:\n" + "\n".join(bad)


def test_the_layer_check_fails_on_an_upward_dependency():
    """Prove the check above can fail: synthetic modules that reach upward in each way it knows."""
    known = set(modules())
    cases = {
        ("charrnn.models.fake", "from ..training import trainer\n"): "charrnn.training.trainer",  # relative, module level
        ("charrnn.tasks.fake", "def f():\n    import charrnn.cli.common\n"): "charrnn.cli.common",  # inside a function
        ("charrnn.data.fake", "from charrnn.models import lm\n"): "charrnn.models.lm",  # absolute from-import
        ("charrnn.tasks.fake", "VIEW = 'charrnn.views.classify:prediction'\n"): "charrnn.views.classify",  # a string
        ("charrnn.models.options", "from . import core\n"): "charrnn.models.core",  # a spec module inside its package
        ("charrnn.api", "from .tui import app\n"): "charrnn.tui.app",  # faces: api sits below the TUI
        ("charrnn.tasks.fake", "from ..runtime import distributed\nfrom ..compare import x\n"): "charrnn.compare",
    }
    for (name, source), target in cases.items():
        found = upward(name, None, known, source)
        assert len(found) == 1 and target in found[0], (name, source, found)
    # and what the order allows passes: downward imports, a registry's own lazy implementation
    assert not upward("charrnn.training.fake", None, known, "from ..tasks import lm\nfrom ..runtime import hardware\n")
    assert not upward("charrnn.models.registry", None, known, "CORE = 'charrnn.models.rnn:RNNCore'\n")
    assert upward("charrnn.models.registry", None, known, "from .rnn import RNNCore\n")  # but not as an import


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
    """The spec (configs, registries, options) and the CLI's top level must not pull in
    torch (nor the TUI, nor numpy): `charrnn --help` answers at once."""
    code = (
        f"import sys; import {', '.join(sorted(SPEC))}, charrnn.cli; "
        "print(sorted(m for m in ('torch', 'textual', 'numpy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_core_modules_do_not_import_the_ui():
    core = ("charrnn.models", "charrnn.tasks", "charrnn.training", "charrnn.data", "charrnn.config", "charrnn.errors",
            "charrnn.runtime", "charrnn.baselines")  # below the faces; inspect draws its pictures with rich
    ui = ("typer", "rich", "textual")
    bad = []
    for name, path in modules().items():
        if not name.startswith(core):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{name} imports {n}" for n in names if n.split(".")[0] in ui]
    assert not bad, bad


# The checkpoint's keys are read in one place: training/checkpoint.py (`Checkpoint`). Elsewhere
# a checkpoint is typed (ck.step, ck.model_config, ck.task.tokenizer). A key only a checkpoint
# has is flagged wherever it is read by string; a common word ("step", "labels") where what
# is read is named like a checkpoint or is what a load() returned; torch.load anywhere.
CHECKPOINT_OWNER = "charrnn.training.checkpoint"
CHECKPOINT_KEYS = {"model_config", "data_config", "train_config", "trained_on", "trained_precision", "frozen", "optimizer",
                   "batch_in_epoch", "best_val_loss", "best_val_bpc", "last_eval", "carried_state", "label_dropped",
                   "steps_per_epoch", "probe_tree", "rng"}  # fmt: skip
COMMON_KEYS = {"format", "version", "model", "step", "epoch", "elapsed_s", "task", "tokenizer", "labels", "world", "corpus",
               "pairs", "trees", "label_stats"}  # fmt: skip
CHECKPOINT_NAMES = {"ck", "ckpt", "checkpoint", "resume", "payload", "raw", "saved"}


def _checkpointish(node: ast.expr) -> bool:
    if isinstance(node, (ast.Name, ast.Attribute)):
        return (node.id if isinstance(node, ast.Name) else node.attr) in CHECKPOINT_NAMES
    if isinstance(node, ast.Call):
        f = node.func
        return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) == "load"
    return False


def checkpoint_key_reads(source: str) -> list[str]:
    """Each place `source` reads a checkpoint's key by string, or opens a file with torch.load."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key, target = None, None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key, target = node.slice.value, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop", "setdefault")
              and node.args and isinstance(node.args[0], ast.Constant)):  # fmt: skip
            key, target = node.args[0].value, node.func.value
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
            found.append(f"line {node.lineno}: {ast.unparse(node)[:60]}")
            continue
        if key in CHECKPOINT_KEYS or key in COMMON_KEYS and target is not None and _checkpointish(target):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:60]}")
    return found


def test_only_the_checkpoint_class_reads_checkpoint_keys():
    bad = [f"{name} {line}" for name, path in sorted(modules().items()) if name != CHECKPOINT_OWNER
           for line in checkpoint_key_reads(path.read_text())]  # fmt: skip
    assert not bad, "checkpoint keys read by string outside training/checkpoint.py:\n" + "\n".join(bad)


def test_the_checkpoint_key_check_can_fail():
    for source in ('ck["model_config"]["cell"]\n', 'def f(p):\n    return checkpoint.load(p)["step"]\n',
                   'def f(resume):\n    return resume.get("tokenizer")\n', 'x = state.get("carried_state")\n',
                   'import torch\nck = torch.load("last.pt", weights_only=True)\n', 'self.ck["labels"]\n'):  # fmt: skip
        assert len(checkpoint_key_reads(source)) == 1, source
    for source in ('row["step"]\n', 'record.get("labels")\n', 'ck.step\n', 'state.get("kind")\n'):
        assert not checkpoint_key_reads(source), source
