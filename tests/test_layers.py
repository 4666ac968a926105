"""The layer order of docs/architecture.md, checked against the code by the AST of every module under
inspector/ (module-level and function-local imports alike): no import runs up the layers, reports/
imports nothing under runtime/, no function outside a typer command takes more than 8 parameters, and
the string literal ".gguf" (a suffix test) appears only in checkpoint/ and source.py. The issue's
own check, a grep for `.gguf` outside checkpoint/ and source, also finds help
texts and example file names; this test holds the code to the rule, the grep the prose too."""

from __future__ import annotations

import ast
from pathlib import Path

from architecture_tool import architecture

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inspector"
MAX_PARAMETERS = 8
GGUF_HOME = ("checkpoint/", "source.py")  # the only places that may name the suffix


LAYERS = architecture.layers(architecture.DOC.read_text(encoding="utf-8"))
RANK = {name: i for i, name in enumerate(LAYERS)}
MODULES = {".".join(("inspector", *m.with_suffix("").parts)).removesuffix(".__init__"): m for m in architecture.modules()}


def _tree(module: Path) -> ast.Module:
    return ast.parse((PACKAGE / module).read_text(encoding="utf-8"))


def _targets(name: str, module: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The inspector modules an import statement names (a relative import resolved against `name`)."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = name.split(".")
            if module.name != "__init__.py":
                parts = parts[:-1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        wanted = [base, *(f"{base}.{a.name}" for a in node.names)]
    out = []
    for target in wanted:
        while target and target not in MODULES:  # the longest module the name names
            target = target.rpartition(".")[0]
        if target and target != name and target not in out:
            out.append(target)
    return out


def _imports() -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import of an inspector module by another."""
    found = []
    for name, module in MODULES.items():
        for node in ast.walk(_tree(module)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [(name, target, node.lineno) for target in _targets(name, module, node)]
    return found


def _layer(name: str) -> str:
    return architecture.part(MODULES[name])


def test_every_layer_named_exists_and_every_module_has_a_layer():
    parts = {architecture.part(m) for m in MODULES.values()} - {"__init__", "__main__"}
    assert not sorted(parts - set(LAYERS)), f"not in the layer line of docs/architecture.md: {sorted(parts - set(LAYERS))}"
    assert not sorted(set(LAYERS) - parts), f"the layer line names what inspector/ lacks: {sorted(set(LAYERS) - parts)}"


def test_no_import_runs_up_the_layers():
    upward = sorted(f"{a} -> {b} (line {line})" for a, b, line in _imports()
                    if _layer(a) in RANK and _layer(b) in RANK and RANK[_layer(b)] < RANK[_layer(a)])
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def test_reports_import_nothing_under_runtime():
    found = sorted(f"{a} -> {b} (line {line})" for a, b, line in _imports()
                   if _layer(a) == "reports" and _layer(b) == "runtime")
    assert not found, "reports/ imports from runtime/ (records belong in inspector/steps.py):\n" + "\n".join(found)


def _commands() -> set[tuple[str, str]]:
    """(module, function) of every typer command: cli/app.py's COMMANDS, read from its source."""
    for node in _tree(Path("cli/app.py")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMMANDS" for t in node.targets):
            return {tuple(ast.literal_eval(v)) for v in node.value.values}
    raise AssertionError("inspector/cli/app.py has no COMMANDS table")


def _functions():
    """(module name, function node) of every function under inspector/."""
    for name, module in MODULES.items():
        for node in ast.walk(_tree(module)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield name, node


def _marked(node) -> bool:
    return any(ast.unparse(d) == "command" for d in node.decorator_list)


def test_commands_are_the_marked_functions():
    """A typer command is both in COMMANDS and marked @command (inspector.cli.options.command)."""
    marked = {(name, node.name) for name, node in _functions() if _marked(node)}
    assert marked == _commands(), f"COMMANDS only: {sorted(_commands() - marked)}; @command only: {sorted(marked - _commands())}"


def test_no_function_takes_more_than_8_parameters():
    commands = _commands()
    wide = []
    for name, node in _functions():
        args = node.args
        count = len([a for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")])
        if count > MAX_PARAMETERS and not ((name, node.name) in commands and _marked(node)):
            wide.append(f"{name}:{node.name} takes {count}")
    assert not wide, f"functions over {MAX_PARAMETERS} parameters (give them a record):\n" + "\n".join(sorted(wide))


def test_gguf_suffix_only_in_checkpoint_and_source():
    found = [f"inspector/{m.as_posix()}:{node.lineno}" for m in MODULES.values() if not m.as_posix().startswith(GGUF_HOME)
             for node in ast.walk(_tree(m))
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() == ".gguf"]
    assert not found, "the literal '.gguf' outside checkpoint/ and source.py (ask inspector.source):\n" + "\n".join(found)
