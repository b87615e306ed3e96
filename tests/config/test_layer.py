"""The config layer is closed: rlvr/config imports nothing above it, and loading it loads no GPU library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rlvr.config

CONFIG = Path(rlvr.config.__file__).parent
ALLOWED = {"__future__", "pydantic", "yaml"}
HEAVY = ("torch", "vllm", "ray", "transformers", "peft", "deepspeed")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, at any depth, except those under ``if TYPE_CHECKING:`` (annotations only)."""
    if isinstance(tree, ast.If) and getattr(tree.test, "id", None) == "TYPE_CHECKING":
        return [i for child in tree.orelse for i in _imports(child)]
    if isinstance(tree, ast.Import):
        return [(tree.lineno, a.name) for a in tree.names]
    if isinstance(tree, ast.ImportFrom) and tree.level == 0:
        return [(tree.lineno, tree.module or "")]
    return [i for child in ast.iter_child_nodes(tree) for i in _imports(child)]


def test_no_module_of_the_config_layer_imports_anything_above_it():
    above = []
    for path in sorted(CONFIG.rglob("*.py")):
        for line, module in _imports(ast.parse(path.read_text())):
            top = module.split(".")[0]
            if module.startswith("rlvr.config") or top in ALLOWED or top in sys.stdlib_module_names:
                continue
            above.append(f"{path.relative_to(CONFIG.parent.parent)}:{line} imports {module}")
    assert above == []


def test_the_ast_walk_sees_imports_inside_functions():
    tree = ast.parse("if TYPE_CHECKING:\n    import ray\ndef f():\n    import torch\n    from rlvr.trial import plan\n")
    assert [m for _, m in _imports(tree)] == ["torch", "rlvr.trial"]


def test_importing_the_config_layer_loads_no_gpu_or_cluster_library():
    code = (
        "import pkgutil, importlib, sys, rlvr.config as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'rlvr.config.'): importlib.import_module(m.name)\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
