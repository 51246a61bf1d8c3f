"""The package layout and its dependency rules, read from the source with `ast`.

Nothing here imports tfmask: every rule is checked on the text of `tfmask/**.py`, imports
inside functions included, so a rule holds for code paths no other test runs. Failures list
`file:line` and the offending name.

    tfmask/text      never imports model, train, serve, interop, runs, commands or cli
    tfmask/model     keras, TensorFlow core (no tensorflow_text, no tf.data), numpy, the
                     standard library, tfmask.config and itself
    tfmask/serve     never imports tfmask.train
    tfmask/cli.py    the only module that reads sys.argv or the environment
    config, validation, presets  and the package itself load no TensorFlow
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import re
import sys
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tfmask"

SUBPACKAGES = ("text", "model", "train", "serve", "interop", "demo", "commands")
TOP_LEVEL_MODULES = {"__init__", "__main__", "cli", "config", "presets", "runs", "validation"}
MAX_LINES = 600
#: Top-level distributions that load TensorFlow when imported.
TENSORFLOW_FAMILY = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "keras",
                     "keras_hub", "tf_keras")
#: What reads the command line or the environment.
PROCESS_STATE = ("sys.argv", "sys.orig_argv", "os.environ", "os.environb", "os.getenv",
                 "os.getenvb", "os.putenv", "os.unsetenv")


# ----------------------------------------------------------------------------------------------
# Reading the source
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Module:
    name: str  # dotted: "tfmask.text.packing", "tfmask.text" for tfmask/text/__init__.py
    path: Path
    source: str
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def where(self) -> str:
        return str(self.path.relative_to(REPO))


@functools.cache
def modules() -> dict[str, Module]:
    """Every module of tfmask/, by dotted name."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        source = path.read_text(encoding="utf-8")
        out[".".join(parts)] = Module(".".join(parts), path, source,
                                      ast.parse(source, filename=str(path)))
    return out


def within(name: str, prefixes) -> bool:
    """`name` is one of `prefixes` or inside one (`tfmask.train.x` is within `tfmask.train`)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def in_package(package: str) -> list[Module]:
    return [m for name, m in modules().items() if within(name, [package])]


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The module an `ImportFrom` reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imports(module: Module) -> list[tuple[int, str]]:
    """`(line, dotted name)` of every import in `module`, at any depth.

    `from a import b` gives `a.b` when that is a tfmask module, else `a` for tfmask names
    (`from tfmask.config import Experiment` -> `tfmask.config`) and `a.b` for third-party ones
    (`from tensorflow import data` -> `tensorflow.data`). `importlib.import_module("x")` and
    `__import__("x")` with a literal name count too.
    """
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if within(base, ["tfmask"]):
                    found.append((node.lineno, full if full in modules() else base))
                else:
                    found.append((node.lineno, base if alias.name == "*" else full))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and _dotted(node.func) in ("importlib.import_module", "import_module",
                                         "__import__")):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def module_level_imports(module: Module) -> list[tuple[int, str]]:
    """The imports that run when `module` is imported (not those inside functions)."""
    lines = set()
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lines |= {n.lineno for n in ast.walk(node) if hasattr(n, "lineno")}
    return [(line, name) for line, name in imports(module) if line not in lines]


def _dotted(node) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id] + parts[::-1])


def aliases(module: Module) -> dict[str, str]:
    """Local name -> the dotted name it stands for (`tf` -> `tensorflow`), any depth."""
    out = {}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    out[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                out[alias.asname or alias.name] = f"{base}.{alias.name}"
    return out


def attribute_uses(module: Module) -> list[tuple[int, str]]:
    """`(line, resolved dotted name)` of every attribute chain on an imported name
    (`tf.data.Dataset` with `import tensorflow as tf` gives `tensorflow.data` and
    `tensorflow.data.Dataset`)."""
    names = aliases(module)
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            if head in names:
                found.append((node.lineno, f"{names[head]}.{rest}"))
    return found


def violation(m: Module, line: int, name: str) -> str:
    return f"  {m.where}:{line}: {name}"


# ----------------------------------------------------------------------------------------------
# Layout
# ----------------------------------------------------------------------------------------------
def test_subpackages_exist():
    missing = [s for s in SUBPACKAGES if not (PACKAGE / s / "__init__.py").is_file()]
    assert not missing, f"tfmask/ lacks the subpackages {missing}"


def test_top_level_modules():
    found = {p.stem for p in PACKAGE.glob("*.py")}
    assert found == TOP_LEVEL_MODULES, (
        f"top-level modules of tfmask/: unexpected {sorted(found - TOP_LEVEL_MODULES)}, "
        f"missing {sorted(TOP_LEVEL_MODULES - found)}")


def test_no_module_outside_demo_is_over_600_lines():
    long = [(m.where, len(m.source.splitlines())) for name, m in modules().items()
            if not within(name, ["tfmask.demo"]) and len(m.source.splitlines()) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(
        f"  {where}: {n} lines" for where, n in long)


# ----------------------------------------------------------------------------------------------
# Dependency rules
# ----------------------------------------------------------------------------------------------
def test_text_imports_nothing_above_it():
    above = ["tfmask.model", "tfmask.train", "tfmask.serve", "tfmask.interop", "tfmask.runs",
             "tfmask.cli", "tfmask.commands"]
    bad = [violation(m, line, name) for m in in_package("tfmask.text")
           for line, name in imports(m) if within(name, above)]
    assert not bad, "tfmask.text imports model/train/serve/interop/runs/cli code:\n" + \
        "\n".join(bad)


def test_model_imports_only_keras_and_tensorflow_core():
    allowed_tfmask = ["tfmask.config", "tfmask.model"]
    third_party = ["keras", "tensorflow", "numpy"]
    bad = []
    for m in in_package("tfmask.model"):
        for line, name in imports(m):
            top = name.split(".")[0]
            if within(name, ["tfmask"]):
                ok = within(name, allowed_tfmask)
            else:
                ok = ((top in third_party or top in sys.stdlib_module_names)
                      and not within(name, ["tensorflow.data"]))
            if not ok:
                bad.append(violation(m, line, name))
        bad += [violation(m, line, name) for line, name in attribute_uses(m)
                if name == "tensorflow.data"]
    assert not bad, ("tfmask.model may import only keras, TensorFlow core (no "
                     "tensorflow_text, no tf.data), numpy, the standard library, "
                     "tfmask.config and tfmask.model:\n" + "\n".join(bad))


def test_serve_imports_no_training_code():
    bad = [violation(m, line, name) for m in in_package("tfmask.serve")
           for line, name in imports(m) if within(name, ["tfmask.train"])]
    assert not bad, "tfmask.serve imports tfmask.train:\n" + "\n".join(bad)


def test_only_the_cli_reads_argv_or_the_environment():
    bad = []
    for name, m in modules().items():
        if name == "tfmask.cli":
            continue
        bad += [violation(m, line, used) for line, used in attribute_uses(m)
                if used in PROCESS_STATE]
        bad += [violation(m, line, imported) for line, imported in imports(m)
                if within(imported, PROCESS_STATE)]
    assert not bad, "only tfmask/cli.py may read the command line or the environment:\n" + \
        "\n".join(bad)


@functools.cache
def _loads_tensorflow(name: str) -> tuple[str, ...]:
    """The import chain by which importing tfmask module `name` loads TensorFlow, or ()."""
    chain = _tensorflow_chain(name, frozenset())
    return tuple(chain or ())


def _tensorflow_chain(name: str, seen: frozenset) -> list[str] | None:
    parts = name.split(".")
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    for i in range(1, len(parts) + 1):
        step = ".".join(parts[:i])
        if step in seen or step not in modules():
            continue
        seen = seen | {step}
        m = modules()[step]
        for line, imported in module_level_imports(m):
            if imported.split(".")[0] in TENSORFLOW_FAMILY:
                return [f"{m.where}:{line} imports {imported}"]
            if within(imported, ["tfmask"]):
                rest = _tensorflow_chain(imported, seen)
                if rest:
                    return [f"{m.where}:{line} imports {imported}"] + rest
    return None


def test_config_presets_and_the_package_load_no_tensorflow():
    """`import tfmask` (and the configs the CLI reads first) must answer without TensorFlow."""
    bad = []
    for name in ("tfmask.config", "tfmask.validation", "tfmask.presets"):
        m = modules()[name]
        for line, imported in imports(m):  # functions included: no TensorFlow at all here
            if imported.split(".")[0] in TENSORFLOW_FAMILY:
                bad.append(f"{m.where}:{line} imports {imported}")
            elif within(imported, ["tfmask"]) and _loads_tensorflow(imported):
                bad.append(f"{m.where}:{line} imports {imported}, which loads TensorFlow: "
                           + " -> ".join(_loads_tensorflow(imported)))
    chain = _loads_tensorflow("tfmask")
    if chain:
        bad.append("import tfmask loads TensorFlow: " + " -> ".join(chain))
    assert not bad, "\n".join(bad)



def test_the_command_line_loads_no_tensorflow_before_its_checks():
    """`tfmask --help` and every argument check answer before TensorFlow loads: the CLI and its
    command modules import TensorFlow (or tfmask code that does) only inside `run`."""
    names = ["tfmask.cli"] + [n for n in modules() if within(n, ["tfmask.commands"])]
    bad = [" -> ".join(_loads_tensorflow(n)) for n in names if _loads_tensorflow(n)]
    assert not bad, "the CLI loads TensorFlow at import:\n" + "\n".join(bad)

# ----------------------------------------------------------------------------------------------
# Comments and docstrings
# ----------------------------------------------------------------------------------------------
def prose(m: Module) -> list[tuple[int, str]]:
    """`(line, text)` of every comment and every string statement (docstrings, attribute
    docstrings) of a module, one entry per line."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(m.source).readline):
        if tok.type == tokenize.COMMENT:
            out.append((tok.start[0], tok.string))
    for node in ast.walk(m.tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            # The docstring's first line is the statement's line; later lines follow it.
            out += [(node.lineno + i, text)
                    for i, text in enumerate(node.value.value.splitlines())]
    return sorted(out)


OUTSIDE_THE_REPOSITORY = ("CLARIFICATIONS", "STYLE.md", "../shared")


def test_comments_and_docstrings_cite_only_the_repository():
    bad = [violation(m, line, word) for m in modules().values() for line, text in prose(m)
           for word in OUTSIDE_THE_REPOSITORY if word in text]
    assert not bad, ("comments and docstrings cite files outside the repository (say the "
                     "fact itself):\n" + "\n".join(bad))


def _bindings(body) -> dict[str, ast.AST]:
    """Names bound by a module or class body -> the statement that binds them (top level,
    and inside if/try/with blocks, not inside functions)."""
    out = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update({n.id: node for t in targets for n in ast.walk(t)
                        if isinstance(n, ast.Name)})
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update({alias.asname or alias.name.split(".")[0]: node
                        for alias in node.names})
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                out.update(_bindings(block))
    return out


def _instance_attributes(cls: ast.ClassDef) -> set[str]:
    """Attributes a class's methods set on `self` (`self.hidden_dim = ...`)."""
    return {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
            and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
            and n.value.id == "self"}


def _resolve_attribute(m: Module, parts: list[str], depth: int = 0) -> bool:
    """Whether `parts` (`["Experiment", "train"]`) names something defined in module `m`."""
    if not parts or depth > 8:
        return True
    node = _bindings(m.tree.body).get(parts[0])
    if node is None:
        return f"{m.name}.{parts[0]}" in modules()
    if isinstance(node, ast.ImportFrom):
        alias = next(a for a in node.names if (a.asname or a.name) == parts[0])
        source = _absolute(m, node)
        if f"{source}.{alias.name}" in modules():  # `from tfmask.text import packing`
            return resolve(".".join([f"{source}.{alias.name}"] + parts[1:]))
        if source in modules():
            return _resolve_attribute(modules()[source], [alias.name] + parts[1:], depth + 1)
        return True  # a third-party name: nothing to check here
    if isinstance(node, ast.ClassDef) and len(parts) > 1:
        return _resolve_class_attribute(m, node, parts[1:], depth)
    return True


def _resolve_class_attribute(m: Module, cls: ast.ClassDef, parts: list[str], depth) -> bool:
    if parts[0] in _bindings(cls.body) or parts[0] in _instance_attributes(cls):
        return True
    for base in cls.bases:
        dotted = _dotted(base)
        if dotted is None:
            return True
        local = _bindings(m.tree.body).get(dotted)
        if isinstance(local, ast.ClassDef):
            if _resolve_class_attribute(m, local, parts, depth + 1):
                return True
        elif isinstance(local, ast.ImportFrom):
            source = _absolute(m, local)
            if source not in modules():
                return True  # a third-party base (keras.Model): not checked
            if _resolve_attribute(modules()[source], [dotted] + parts, depth + 1):
                return True
        else:
            return True  # a base reached through an attribute (keras.Model): not checked
    return False


def resolve(dotted: str) -> bool:
    """Whether `tfmask.a.b...` names a tfmask module or something a module defines."""
    parts = dotted.split(".")
    if parts[-1] == "py":
        parts = parts[:-1]
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in modules():
            return _resolve_attribute(modules()[name], parts[i:])
    return False


DOTTED = re.compile(r"(?<![\w.])tfmask(?:\.[A-Za-z_]\w*)+")


def test_dotted_names_in_comments_and_docstrings_exist():
    bad = [violation(m, line, name) for m in modules().values() for line, text in prose(m)
           for name in DOTTED.findall(text) if not resolve(name)]
    assert not bad, ("comments and docstrings name tfmask modules or attributes that do not "
                     "exist:\n" + "\n".join(bad))


# `x.py`, `dir/x.py` and `tfmask/...`, not inside a URL or a longer path.
PY_FILE = re.compile(r"(?<![\w./*:-])((?:[\w.-]+/)*[\w-]+\.py)\b")
PACKAGE_PATH = re.compile(r"(?<![\w./:-])(tfmask/[\w./-]*)")


def _file_exists(m: Module, path: str) -> bool:
    path = path.rstrip("./")
    candidates = [REPO / path, m.path.parent / path, PACKAGE / path]
    if "/" not in path:
        # A bare module file name: in the mentioning package or anywhere in tfmask/.
        candidates += list(PACKAGE.rglob(path))
    return any(c.exists() for c in candidates)


def test_file_paths_in_comments_and_docstrings_exist():
    bad = [violation(m, line, path) for m in modules().values() for line, text in prose(m)
           for path in PY_FILE.findall(text) + PACKAGE_PATH.findall(text)
           if not _file_exists(m, path)]
    assert not bad, "comments and docstrings name files that do not exist:\n" + \
        "\n".join(bad)


# ----------------------------------------------------------------------------------------------
# The readers above see what the rules are about (a rule that matches nothing passes silently)
# ----------------------------------------------------------------------------------------------
def _fake(name: str, source: str) -> Module:
    path = PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")
    return Module(name, path, source, ast.parse(source))


def test_the_readers_see_imports_attributes_and_prose_at_any_depth():
    m = _fake("tfmask.text.example", (
        '"""Built by tfmask.text.packing.finalize; see tfmask/text/packing.py."""\n'
        "import os as operating_system\n"
        "import tensorflow as tf\n"
        "from tensorflow import data\n"
        "from . import masking\n"
        "from ..train import finetuning\n"
        "def f():\n"
        "    import importlib\n"
        "    from tfmask.model.encoder import BertEncoder  # see BertEncoder\n"
        "    importlib.import_module('tfmask.serve.export')\n"
        "    return tf.data.Dataset, operating_system.environ.get('X')\n"))
    assert imports(m) == [(2, "os"), (3, "tensorflow"), (4, "tensorflow.data"),
                          (5, "tfmask.text.masking"), (6, "tfmask.train.finetuning"),
                          (8, "importlib"), (9, "tfmask.model.encoder"),
                          (10, "tfmask.serve.export")]
    assert module_level_imports(m) == imports(m)[:5]
    used = set(attribute_uses(m))
    assert {(11, "tensorflow.data"), (11, "os.environ")} <= used
    assert (1, '"""Built by tfmask.text.packing.finalize; see tfmask/text/packing.py."""'
            ) not in prose(m)
    assert [line for line, _ in prose(m)] == [1, 9]
    text = " ".join(t for _, t in prose(m))
    assert DOTTED.findall(text) == ["tfmask.text.packing.finalize"]
    assert PY_FILE.findall(text) == ["tfmask/text/packing.py"]
    assert PY_FILE.findall("https://github.com/google-research/bert/blob/master/x.py") == []


def test_dotted_names_resolve_to_modules_and_their_definitions():
    assert resolve("tfmask") and resolve("tfmask.config")
    assert resolve("tfmask.config.Experiment") and resolve("tfmask.config.EncoderConfig.dropout")
    assert not resolve("tfmask.config.NoSuchThing")
    assert not resolve("tfmask.config.Experiment.no_such_field")
    assert not resolve("tfmask.no_such_module")
    # Re-exports are followed to their definition; attributes set on `self` count. (What a
    # class inherits from a third-party base, such as keras.Model, is not checked.)
    assert resolve("tfmask.model.BertEncoder.hidden_dim")
    assert resolve("tfmask.model.encoder.BertEncoder.from_encoder_config")


def test_tests_sharing_a_run_are_scheduled_together(request):
    """Under the README's test command (`pytest -n 2 --dist loadgroup`) tests/conftest.py puts
    every test that uses a session run in one xdist group, so each run is built once. The group
    reaches the scheduler only as a suffix of the node id; with pytest 9.2 and pytest-xdist 3.8
    the suffix was lost and every test was scheduled alone (the runs and the two-worker cluster
    built twice, the suite ~40% slower), silently. Skipped when not under xdist's loadgroup."""
    import os

    import pytest

    if not os.environ.get("PYTEST_XDIST_WORKER") or not request.config.getvalue("loadgroup"):
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    group = request.node.nodeid.split("::")[0].split("@")[0]
    assert request.node.nodeid.endswith(f"@{group}"), (
        f"node id {request.node.nodeid!r} carries no xdist group: this pytest-xdist cannot "
        "group tests with this pytest (see the pin in setup.cfg)")
