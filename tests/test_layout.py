"""The package's layout: no import cycle, no module over 400 lines, a light ``import gptheory``, every module named in
the package docstring and tested by its own test file, and shipped results present where the package data says."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import gptheory

PACKAGE = Path(gptheory.__file__).resolve().parent
TESTS = Path(__file__).resolve().parent
MAX_LINES = 400

# Module -> the test file that tests it, where that is not tests/test_<leaf name>.py.
TESTED_BY = {
    "gptheory": "test_layout.py",
    "gptheory.__main__": "test_cli.py",
    "gptheory.diffusers_unet": "test_unet.py",  # the UNets of the Figure 11 comparison, side by side
    "gptheory.bench": "test_bench.py",
    "gptheory.bench.__main__": "test_bench.py",
    "gptheory.bench.score": "test_bench.py",
    "gptheory.bench.sweep": "test_bench.py",
    "gptheory.bench.train": "test_bench.py",
    "gptheory.book": "test_book.py",
    "gptheory.book.answers": "test_exercises.py",  # the computations the checks compare answers with
    "gptheory.bouncing_ball": "test_bouncing_ball.py",
    "gptheory.bouncing_ball.experiment": "test_bouncing_ball.py",  # the experiment is named after its chapter
    "gptheory.construct": "test_construct.py",
    "gptheory.construct.builder": "test_construct.py",
    "gptheory.construct.embedding": "test_construct.py",
    "gptheory.construct.heads": "test_construct.py",
    "gptheory.construct.layers": "test_construct.py",
    "gptheory.construct.modules": "test_construct.py",
    "gptheory.construct.network": "test_construct.py",
    "gptheory.construct.size": "test_construct.py",
    "gptheory.construct.over_times": "test_uniform.py",  # one network against per-time networks over [t0, T]
    "gptheory.experiments": "test_sweep.py",  # the sweep registry
    "gptheory.shipping": "test_sweep.py",  # the one-version rule of shipped sweeps, applied by run_sweep
    "gptheory.experiments.imputation_analysis": "test_imputation.py",  # its verdicts and figures
}

# Modules whose test file another branch of issue #19 adds, or that it removes: to empty when the branches are merged
# (test_pending_entries_are_still_pending fails on an entry that is no longer pending).
PENDING_TESTS: dict[str, str] = {}
PENDING_SIZE: dict[str, str] = {}
PENDING_IMPORTS: dict[tuple[str, str], str] = {}  # (importer, imported): the edge is left out of the cycle search


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``), shipped data and caches left out."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports anywhere in its source (inside functions too: a lazy import that hides a
    cycle is still a cycle). ``from .pkg import x`` is an import of the module ``pkg.x`` when there is one, else of
    ``pkg``; the parent packages Python initialises on the way are not counted."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            subs = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            found |= subs if len(subs) == len(node.names) else subs | {base}
    return {m for m in found if m in MODULES and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None`` (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is not a cycle
    assert _cycle({"a": {"a"}}) == ["a", "a"]


def test_the_import_graph_sees_relative_absolute_and_lazy_imports():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert "gptheory.gp" in graph["gptheory.early_stopping"]  # from .gp import ...
    assert "gptheory.dit" in graph["gptheory"]  # the package's re-exports
    assert "gptheory.profiles" in graph["gptheory.experiments"]  # from ..profiles import PROFILES
    assert graph["gptheory.version"] == set()


def test_no_import_cycle_among_the_package_modules():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    for importer, imported in PENDING_IMPORTS:
        graph[importer].discard(imported)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in PENDING_SIZE}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_import_gptheory_leaves_out_the_sweeps_the_vae_and_the_tracker():
    heavy = ["gptheory.sweep", "gptheory.executors", "gptheory.bouncing_ball.vae", "gptheory.bouncing_ball.tracking"]
    code = f"import gptheory, sys; print([m for m in {heavy!r} if m in sys.modules])"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    assert run.stdout.strip() == "[]", f"import gptheory imports {run.stdout.strip()}"
    # ... while they are importable by their own names
    code = f"import importlib; [importlib.import_module(m) for m in {heavy!r}]"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_the_package_docstring_names_every_module():
    doc = gptheory.__doc__ or ""
    leaves = {name.rpartition(".")[2] for name in MODULES if name != "gptheory" and not name.endswith("__main__")}
    missing = sorted(leaf for leaf in leaves if f"``{leaf}``" not in doc)
    assert not missing, f"the docstring of gptheory/__init__.py does not name {missing}"


def _names(text: str, module: str) -> bool:
    """Whether a test file's ``text`` names ``module``: its own name, or its subpackage's (``gptheory.construct``
    for ``gptheory.construct.builder``, whose names the subpackage re-exports)."""
    parent, _, leaf = module.rpartition(".")
    return leaf in text or (parent != "gptheory" and parent in text)


def _test_file(name: str) -> str:
    return TESTED_BY.get(name, f"test_{name.rpartition('.')[2]}.py")


def test_every_module_has_its_test_file_and_that_file_imports_it():
    missing, unused = [], []
    for name in MODULES:
        if name in PENDING_TESTS:
            continue
        test = TESTS / _test_file(name)
        if not test.is_file():
            missing.append(f"{name} -> tests/{test.name}")
        elif name != "gptheory" and not _names(test.read_text(), name):
            unused.append(f"{name} -> tests/{test.name}")
    assert not missing, f"modules without their test file: {missing}"
    assert not unused, f"test files that never name the module they test: {unused}"


def test_pending_entries_are_still_pending():
    """Each exception above is removed once it no longer applies, so that none outlives its reason."""
    stale = [m for m in PENDING_TESTS if m not in MODULES or (TESTS / _test_file(m)).is_file()]
    stale += [m for m in PENDING_SIZE if m not in MODULES or len(MODULES[m].read_text().splitlines()) <= MAX_LINES]
    stale += [m for m in TESTED_BY if m not in MODULES]
    stale += [edge for edge in PENDING_IMPORTS if edge[1] not in _imports(edge[0], MODULES[edge[0]])]
    assert not stale, f"remove these entries from tests/test_layout.py: {stale}"


def test_every_test_file_is_named_after_a_module_or_is_a_whole_book_check():
    # layout, the book's wiring, the shipped results, the browser check's own checks, the printed book, citing and
    # publishing
    whole = {
        "test_layout.py",
        "test_book.py",
        "test_shipped.py",
        "test_browser_check.py",
        "test_pdf.py",
        "test_citation.py",
    }
    named = {_test_file(name) for name in MODULES} | whole
    strays = sorted(p.name for p in TESTS.glob("test_*.py") if p.name not in named)
    assert not strays, f"test files named after no module: {strays} (name it tests/test_<module>.py)"


# ------------------------------------------------------------------------------------------------ shipped results
SHIPPED = PACKAGE / "shipped"
SHIPPED_RECORDS = {
    "sample_complexity",
    "probe",
    "bouncing_ball",
    "dit_learns",
    "imputation",
}  # NAMEs whose cpu results ship


def test_shipped_results_are_present_for_every_shipped_experiment():
    """Tests that loop over shipped results would pass on an empty folder: this one fails there."""
    stems = [p.stem for p in SHIPPED.glob("*.json")]
    assert {s.rpartition("-")[0] for s in stems} == SHIPPED_RECORDS
    for stem in stems:
        name, _, key = stem.rpartition("-")
        assert len(key) == 16 and all(c in "0123456789abcdef" for c in key), stem  # <record NAME>-<config key>
    assert not (SHIPPED / "__init__.py").exists() and "gptheory.shipped" not in MODULES  # data, not a module
