"""The house's direction of dependence, checked on the source: golden/ stands on the ground.

Every module of :mod:`spinapse.golden` is parsed (not imported) and each of its imports must be
the standard library, torch, numpy or another golden module: nothing from the configuration, the
data sets, the result files, the experiments or the command line.
"""

import ast
import pathlib
import sys

import spinapse.golden

GOLDEN = pathlib.Path(spinapse.golden.__path__[0])
ALLOWED_THIRD_PARTY = {"torch", "numpy"}


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "spinapse.golden"))  # relative: inside golden/
    return found


def test_golden_imports_only_torch_numpy_and_itself():
    files = sorted(GOLDEN.rglob("*.py"))
    assert len(files) >= 10, files  # the walk found the package
    bad = []
    for f in files:
        for line, name in _imports(f):
            top = name.split(".")[0]
            if top == "spinapse":
                ok = name == "spinapse.golden" or name.startswith("spinapse.golden.")
            else:
                ok = top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names
            if not ok:
                bad.append(f"{f.relative_to(GOLDEN)}:{line}: import {name}")
    assert not bad, "golden/ must stand on torch and numpy alone:\n" + "\n".join(bad)


def test_the_walk_sees_a_forbidden_import(tmp_path):
    """The checker itself flags an import of the configuration (it can fail)."""
    f = tmp_path / "m.py"
    f.write_text("from spinapse.config import ExperimentConfig\nimport numpy\n")
    assert _imports(f) == [(1, "spinapse.config"), (2, "numpy")]
