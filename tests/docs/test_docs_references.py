"""The design map and the architecture walk-through stay true of the code.

- every ``path/file.py:Name.attr`` they cite (in backticks; paths under ``src/deai/`` unless they
  start with a repository folder) names a file that exists and a function, class, method or
  attribute defined in it;
- every relative Markdown link they hold points at a file that exists;
- each package of ``src/deai`` imports only the layers below it (module-level and lazy imports).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "deai"
DOCS = [ROOT / "docs" / "architecture.md", ROOT / "docs" / "design.md"]
REPO_FOLDERS = ("src/", "tests/", "benchmarks/", "docs/", "scenarios/")
REFERENCE = re.compile(r"`([A-Za-z0-9_./-]+\.py)(?::([A-Za-z_][\w.]*))?`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Lower number = lower layer; a package may import only packages with a smaller number
# (ledger and learn are side by side: neither may import the other).
LAYERS = {"core": 0, "ledger": 1, "learn": 1, "protocol": 2, "net": 3, "node": 4, "sim": 5, "cli": 6}
LAYERS["testing"] = LAYERS["cli"]  # the attack catalogue drives a network like the CLI does


def _defined(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module or class body defines: functions, classes, assignments, annotated fields."""
    out: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _resolve(path: str, name: str | None) -> str | None:
    """None if ``path`` exists and defines ``name`` (dotted), else what is missing."""
    file = ROOT / path if path.startswith(REPO_FOLDERS) else SRC / path
    if not file.is_file():
        return f"no file {file.relative_to(ROOT)}"
    if name is None:
        return None
    scope: list[ast.stmt] = ast.parse(file.read_text()).body
    for part in name.split("."):
        node = _defined(scope).get(part)
        if node is None:
            return f"{path} defines no {name}"
        scope = node.body if isinstance(node, ast.ClassDef) else []
    return None


def _references() -> list[tuple[str, str, str | None]]:
    out = []
    for doc in DOCS:
        for match in REFERENCE.finditer(doc.read_text()):
            if "*" not in match.group(1) and not match.group(1).startswith("path/"):  # a placeholder
                out.append((doc.name, match.group(1), match.group(2)))
    return out


def test_the_docs_cite_code():
    refs = _references()
    assert len(refs) > 50, "the architecture walk-through should cite the code it follows"


@pytest.mark.parametrize("doc", [d.name for d in DOCS])
def test_every_cited_function_exists(doc):
    missing = [
        f"`{path}{':' + name if name else ''}`: {why}"
        for where, path, name in _references()
        if where == doc and (why := _resolve(path, name)) is not None
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_relative_link_resolves(doc):
    broken = [
        target
        for target in LINK.findall(doc.read_text())
        if "://" not in target and not (doc.parent / target).exists()
    ]
    assert not broken, broken


def _imports(file: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_each_layer_imports_only_lower_layers():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages without a layer: {packages - set(LAYERS)}"
    violations = []
    for file in sorted(SRC.rglob("*.py")):
        rel = file.relative_to(SRC)
        if len(rel.parts) < 2:
            continue
        src = rel.parts[0]
        for line, module in _imports(file):
            parts = module.split(".")
            if parts[0] != "deai" or len(parts) < 2 or parts[1] == src or parts[1] not in LAYERS:
                continue
            dst = parts[1]
            if LAYERS[dst] >= LAYERS[src]:
                violations.append(f"{rel}:{line} ({src}) imports {module} ({dst})")
    assert not violations, "\n".join(violations)
