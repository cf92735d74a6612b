"""The shape of the package, read statically: small modules and classes, imports that point one way, and one
owner for the names of a run folder's files (tinygan/run_folder.py)."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinygan"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES, MAX_CLASS_LINES = 400, 200
# What a run folder holds, spelled only by its owner (tinygan.run_folder.RunFolder names them for everyone else).
RUN_FILE_NAMES = re.compile(r"(loss_log|fid_log|judge_log)\.csv|(loss_plot|fid_plot)\.png|training\.gif|"
                            r"fid_reference\.npz|best\.npz|config\.json|\bckpt_|\bstep_\d*\b|^\.lock$")
RUN_FOLDER_OWNER = PACKAGE / "run_folder.py"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parse(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def docstring_nodes(tree):
    """The string constants that are docstrings (documentation, not code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def top_level_imports(path):
    """The tinygan modules a module imports when it is imported (not the imports inside functions)."""
    tree, name = parse(path), module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in tree.body:
        for inner in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(inner, ast.Import):
                found.update(a.name for a in inner.names if a.name.startswith("tinygan"))
            elif isinstance(inner, ast.ImportFrom):
                base = inner.module or ""
                if inner.level:
                    anchor = package.split(".")[:len(package.split(".")) - inner.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if not base.startswith("tinygan"):
                    continue
                for alias in inner.names:            # "from . import x" imports the module x
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in ALL_MODULES else base)
    return {m for m in found if m in ALL_MODULES and m != name}


ALL_MODULES = {module_name(path) for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_class_sizes(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines; a module past {MAX_MODULE_LINES} holds two jobs"
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"class {node.name} in {path.name} has {size} lines"


def test_no_import_circle():
    graph = {module_name(path): top_level_imports(path) for path in MODULES}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_import_scan_sees_imports():
    """The circle test would pass on a scan that finds nothing: it must see train's imports."""
    imports = top_level_imports(PACKAGE / "train.py")
    assert {"tinygan.checkpoint", "tinygan.run_folder", "tinygan.optim"} <= imports


def test_run_folder_names_have_one_owner():
    spelled = []
    for path in MODULES:
        if path == RUN_FOLDER_OWNER:
            continue
        tree = parse(path)
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and RUN_FILE_NAMES.search(node.value)):
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value[:60]!r}")
    assert not spelled, "a run folder's file name spelled outside tinygan/run_folder.py:\n" + "\n".join(spelled)
    assert RUN_FILE_NAMES.search(RUN_FOLDER_OWNER.read_text(encoding="utf-8")), "the owner names no file"
