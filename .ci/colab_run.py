"""Run Colab and student notebooks as Colab would: in a bare Python environment, through their install cell.

    python .ci/colab_run.py                        # gp_sequences: its Colab notebook and its student notebook
    python .ci/colab_run.py truncation construction  # other chapters (the first is run as Colab, the second as student)

A fresh virtual environment gets only what a Colab runtime already has -- Python, pip, torch, numpy,
scipy, matplotlib, and the Jupyter kernel (ipykernel) -- at the pinned versions of .ci/requirements.txt.
gptheory is *not* installed: the notebooks' first cell installs it, from a wheel built from this checkout
(GPTHEORY_PIP_SOURCE, which the install cell honours; without it the cell installs from GitHub). Each
notebook then runs top to bottom in that kernel, in an empty folder (so the checkout is not importable),
with GPTHEORY_PROFILE=smoke. For a student notebook the answer cells stay empty, and the run checks that
every exercise check was reached and answered "no answer yet".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
COLAB_RUNTIME = ["torch", "numpy", "scipy", "matplotlib", "ipykernel"]  # what Colab ships that we rely on


def _run(cmd: list[str], cwd: Path) -> str:
    """Run a command quietly, in ``cwd`` (never the checkout, whose gptheory/ would be importable)."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def make_env(where: Path) -> Path:
    """A bare venv with the Colab runtime packages; returns its python."""
    _run([sys.executable, "-m", "venv", str(where)], where.parent)
    python = where / "bin" / "python"
    requirements = ROOT / ".ci" / "requirements.txt"
    _run([str(python), "-m", "pip", "install", "-q", "-c", str(requirements), *COLAB_RUNTIME], where.parent)
    return python


def build_wheel(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], out)
    return next(out.glob("gptheory-*.whl"))


def run(nb_path: Path, python: Path, work: Path, source: str) -> nbformat.NotebookNode:
    kernels = work / "share" / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True, exist_ok=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Colab-like",
                "language": "python",
            }
        )
    )
    os.environ["JUPYTER_PATH"] = str(work / "share" / "jupyter")
    os.environ["GPTHEORY_PIP_SOURCE"] = source
    os.environ["GPTHEORY_PROFILE"] = "smoke"
    os.environ["GPTHEORY_NO_WIDGETS"] = "1"
    os.environ.pop("PYTHONPATH", None)
    nb = nbformat.read(nb_path, as_version=4)
    # one last cell: prove that gptheory came from the install cell, not from the checkout
    nb.cells.append(nbformat.v4.new_code_cell("import gptheory, sys\nprint('GPTHEORY_FROM', gptheory.__file__)"))
    cwd = work / nb_path.stem
    cwd.mkdir(exist_ok=True)
    NotebookClient(nb, kernel_name="colab", timeout=600, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + "".join(str(v) for k, v in o.get("data", {}).items() if k == "text/plain"))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    colab_chapter = argv[0] if argv else "gp_sequences"
    student_chapter = argv[1] if len(argv) > 1 else colab_chapter
    start = time.time()
    work = Path(tempfile.mkdtemp(prefix="colab-run-"))
    try:
        python = make_env(work / "venv")
        print(f"bare environment ready ({time.time() - start:.0f} s): {', '.join(COLAB_RUNTIME)}")
        site = _run([str(python), "-c", "import importlib.util as u; print(u.find_spec('gptheory'))"], work).strip()
        assert site == "None", f"gptheory is already importable in the bare environment: {site}"
        t0 = time.time()
        wheel = build_wheel(work / "dist")
        print(f"wheel of the checkout built ({time.time() - t0:.0f} s): {wheel.name}")
        source = f"gptheory[notebooks] @ {wheel.as_uri()}"
        problems = []
        for kind, path in [
            ("colab", ROOT / "book" / "colab" / f"{colab_chapter}.ipynb"),
            ("student", ROOT / "book" / "colab" / "student" / f"{student_chapter}.ipynb"),
        ]:
            t0 = time.time()
            nb = run(path, python, work, source)
            text = text_of(nb)
            origin = next((line for line in text.splitlines() if line.startswith("GPTHEORY_FROM")), "")
            if str(work / "venv") not in origin:
                problems.append(f"{path.name} ({kind}): gptheory was not installed by the install cell ({origin})")
            if kind == "student":
                n_checks = sum("check(" in c.source for c in nb.cells if c.cell_type == "code")
                n_empty = text.count("no answer yet")
                if n_empty != n_checks:
                    problems.append(f"{path.name} (student): {n_checks} check calls but {n_empty} 'no answer yet'")
                print(f"  {n_checks} exercise checks reached with empty answers")
            print(f"{kind} notebook {path.relative_to(ROOT)} ran top to bottom in {time.time() - t0:.0f} s; {origin}")
    finally:
        # removing a torch install takes minutes on a slow disk: let it finish after we return
        subprocess.Popen(["rm", "-rf", str(work)], start_new_session=True)
    for p in problems:
        print("FAIL", p)
    print(f"Colab-like run: {len(problems)} problems, {time.time() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
