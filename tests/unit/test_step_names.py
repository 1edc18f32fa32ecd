"""A worker step has one name in every area: the module that works a queue's message is the area's `step.py`
(`<what>_step.py` where an area works two queues, as clone/ does its previews beside its attempts), entered by
`process_<what the message names>`, and gives its queue's handler (`<what>_handler`), which calls that entry;
`queue_consumers/handlers.py` hands every work queue to one such handler."""

from __future__ import annotations

import ast
from pathlib import Path

from backend import queues

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "queue_consumers" / "handlers.py"


def _is_step(module: str) -> bool:
    name = module.rpartition(".")[2]
    return name == "step" or name.endswith("_step")


def test_a_step_entry_is_defined_only_in_a_step_module() -> None:
    misplaced = sorted(
        f"{'.'.join(path.relative_to(ROOT).with_suffix('').parts)}.{node.name}"
        for path in (ROOT / "backend").rglob("*.py")
        if not _is_step(path.stem)
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("process_")
    )
    assert not misplaced, f"a `process_` entry belongs in its area's step.py: {misplaced}"


def test_every_work_queue_is_handed_to_a_step_entry() -> None:
    tree = ast.parse(HANDLERS.read_text(encoding="utf-8"))
    # `from backend.clone import step as clone_step`: the name handlers.py calls the module by.
    modules = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("backend")
        for alias in node.names
    }
    routed = [
        ast.unparse(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "QueueRoute"
    ]
    handed = {
        (modules.get(ast.unparse(node.func.value), ast.unparse(node.func.value)), node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_handler")
    }
    work = sorted(f"queues.{name}" for name, value in vars(queues).items() if value in queues.WORK_QUEUES)
    assert sorted(routed) == work, "every work queue has one route"
    assert len(handed) == len(routed), f"one step's handler per work queue: {sorted(handed)}"
    assert all(_is_step(module) for module, _ in handed), f"handlers outside a step module: {sorted(handed)}"
    for module, name in sorted(handed):
        path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
        factory = next(
            node
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.FunctionDef) and node.name == name
        )
        entries = {
            ast.unparse(node.func)
            for node in ast.walk(factory)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("process_")
        }
        assert len(entries) == 1, f"{module}.{name} hands each message to its step's one `process_` entry: {entries}"
