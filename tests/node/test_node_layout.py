"""``deai.node`` is grouped by the process that runs the code, and its imports point one way.

Groups, bottom up: ``participant`` (a participant's daemon) < ``user`` (a task creator's or an
inference user's machine) < ``hub`` (the hub process) < ``launch`` (starting whole networks). A
module may import its own group and the groups below it, never one above; ``deai/node/__init__.py``
imports none of them; every module lives in a group; and the imports between modules form no loop
(so the role registry does not import the roles that register in it). Imports are read with an AST
walk: module level and inside functions, plus string constants naming a ``deai.node`` module (what
``importlib.import_module`` would load).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

NODE = Path(__file__).resolve().parents[2] / "src" / "deai" / "node"
GROUPS = {"participant": 0, "user": 1, "hub": 2, "launch": 3}
MODULE_NAME = re.compile(r"deai\.node(\.\w+)+")


def _module(root: Path, file: Path) -> str:
    parts = file.relative_to(root.parent).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return "deai." + ".".join(parts)


def _imports(file: Path) -> set[str]:
    """The ``deai.node`` modules ``file`` imports (a ``from package import name`` counts as the
    package, or the submodule when ``name`` is one)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and MODULE_NAME.fullmatch(node.value)
        ):
            out.add(node.value)
    return {m for m in out if m == "deai.node" or m.startswith("deai.node.")}


def _graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the tree under ``root`` it imports."""
    files = {_module(root, f): f for f in sorted(root.rglob("*.py"))}
    return {mod: {m for m in _imports(f) if m in files and m != mod} for mod, f in files.items()}


def _group(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else None


def layout_violations(root: Path) -> list[str]:
    """Every upward import, import from the package root, module outside a group, and loop."""
    graph = _graph(root)
    out = []
    for mod, deps in sorted(graph.items()):
        src = _group(mod)
        if mod != "deai.node" and src not in GROUPS:
            out.append(f"{mod} is in no group ({', '.join(GROUPS)})")
            continue
        for dep in sorted(deps):
            dst = _group(dep)
            if src is None:
                out.append(f"deai.node imports {dep}")
            elif dst is not None and dst in GROUPS and GROUPS[dst] > GROUPS[src]:
                out.append(f"{mod} ({src}) imports {dep} ({dst}): an arrow pointing up")
    # A loop between modules: depth-first search over module -> imported modules, skipping package
    # __init__ edges (a package importing its own members is how registries fill, not a loop).
    packages = {m for m in graph if (root.parent / Path(*m.split(".")[1:]) / "__init__.py").exists()}
    edges = {m: {d for d in deps if d not in packages} for m, deps in graph.items() if m not in packages}
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(edges.get(mod, ())):
            if state.get(dep) == 1:
                out.append("import loop: " + " -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[mod] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])
    return out


def test_node_imports_point_down_and_form_no_loop():
    assert not layout_violations(NODE), "\n".join(layout_violations(NODE))


def test_each_group_is_a_package_with_a_public_api():
    for group in GROUPS:
        init = NODE / group / "__init__.py"
        assert init.is_file(), f"node/{group}/ is not a package"
        assert "__all__" in init.read_text(), f"node/{group}/__init__.py has no __all__"


def test_the_check_finds_an_upward_import_a_lazy_one_and_a_loop(tmp_path):
    root = tmp_path / "node"
    for group in GROUPS:
        (root / group).mkdir(parents=True)
        (root / group / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "participant" / "roles.py").write_text(
        'PLUGINS = {"host": "deai.node.participant.host"}\n'  # a registry that imports its members
    )
    (root / "participant" / "host.py").write_text("from deai.node.participant.roles import PLUGINS\n")
    (root / "participant" / "client.py").write_text("def f():\n    from deai.node.hub.server import Hub\n")
    (root / "hub" / "server.py").write_text("from deai.node.participant.client import f\n")
    (root / "loose.py").write_text("")
    found = "\n".join(layout_violations(root))
    assert "deai.node.participant.client (participant) imports deai.node.hub.server (hub)" in found
    assert "import loop: deai.node.participant.host -> deai.node.participant.roles" in found
    assert "deai.node.loose is in no group" in found
    (root / "participant" / "client.py").write_text("")
    (root / "participant" / "roles.py").write_text("")
    (root / "loose.py").unlink()
    assert layout_violations(root) == []
