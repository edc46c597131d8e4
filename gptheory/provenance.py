"""Where a result came from: the source it was computed by, the commit, the device, the date.

* :func:`dependencies` / :func:`code_hash`: every package module a module imports, directly or not (read from its
  import statements), and a hash of their source -- the local result cache keys on it, so editing anything a
  result depends on hides the old result;
* :class:`Provenance`: what is saved with every result (device, date, commit, version, source hash, torch version,
  profile, configuration, wall time).
"""

from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .version import __version__

PACKAGE = __name__.rsplit(".", 1)[0]  # "gptheory"


def canonical_json(config: dict) -> str:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict of JSON-able settings, got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = f"config must hold only JSON-able, finite values (str, int, float, bool, lists, dicts): {err}"
        raise ValueError(msg) from err


# ----------------------------------------------------------------------------------------------- source hash
def _module_file(name: str, root: Path) -> Path | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def dependencies(module: str, root: Path | None = None) -> list[str]:
    """Every ``gptheory`` module that ``module`` imports, directly or through others, itself included, sorted.

    Found by reading import statements (also those inside functions), not by running them. The package's
    ``__init__`` (re-exports only) is left out, so a module is not said to depend on everything.
    """
    root = Path(__file__).resolve().parent if root is None else Path(root)
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_file(name, root)
        if name in seen or path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                todo.append(base)
                todo += [f"{base}.{a.name}" for a in node.names]  # "from . import x" names a module
    return sorted(seen - {PACKAGE})


def code_hash(module: str = f"{PACKAGE}.experiments", root: Path | None = None) -> str:
    """12 hex digits of SHA-256 over the source of ``module`` and of every package module it depends on
    (:func:`dependencies`)."""
    root = Path(__file__).resolve().parent if root is None else Path(root)
    h = hashlib.sha256()
    for name in dependencies(module, root):
        h.update(name.encode() + b"\0" + _module_file(name, root).read_bytes() + b"\0")
    return h.hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ provenance
def git_commit(repo: str | os.PathLike | None = None) -> str:
    """The commit the package runs from (``git rev-parse HEAD``, ``+dirty`` with local changes) or ``"unknown"``.
    Changes to the shipped results (``gptheory/shipped/``, data the sweeps write) do not count: a regeneration writes
    there while it runs, from an unchanged checkout."""
    repo = Path(__file__).resolve().parent.parent if repo is None else Path(repo)
    try:
        run = {"cwd": repo, "capture_output": True, "text": True, "timeout": 10, "check": True}
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){PACKAGE}/shipped"]
        dirty = subprocess.run(status, **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


def device_name(device) -> str:
    """The name of ``device``: the GPU's (``torch.cuda.get_device_name``) or the CPU's with its core count and
    the threads torch uses."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


@dataclass
class Provenance:
    """Where a record came from.

    Attributes:
        device: what computed it (:func:`device_name`); date: UTC, ISO 8601; commit: git commit (``+dirty``);
        version: package version; code: :func:`code_hash` of the computing module; torch: torch version;
        profile: ``smoke``/``cpu``/``gpu`` or ``None``; config: the configuration (JSON-able dict);
        wall_seconds: time to compute (s), every session of a point resumed from its checkpoint included.
    """

    device: str
    date: str
    commit: str
    version: str
    code: str
    torch: str
    profile: str | None
    config: dict
    wall_seconds: float

    @classmethod
    def now(
        cls,
        config: dict,
        wall_seconds: float,
        profile: str | None = None,
        device="cpu",
        code: str | None = None,
        commit: str | None = None,
    ) -> Provenance:
        """Provenance of a record computed just now on ``device`` by code with hash ``code`` (default: the
        experiments' :func:`code_hash`) at ``commit`` (default: the checkout's now, :func:`git_commit`)."""
        import torch

        return cls(
            device=device_name(device),
            date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            commit=git_commit() if commit is None else commit,
            version=__version__,
            code=code_hash() if code is None else code,
            torch=torch.__version__,
            profile=profile,
            config=json.loads(canonical_json(config)),
            wall_seconds=float(wall_seconds),
        )

    def summary(self) -> str:
        """One line for a reader: device, date, commit, wall time."""
        return f"{self.device}, {self.date[:10]}, commit {self.commit[:10]}, {self.wall_seconds:.0f} s"


def matmul_gflops(dtype=None, n: int = 1024, repeats: int = 5) -> float:
    """This machine's measured rate of one ``(n, n) @ (n, n)`` product in ``dtype`` (default float32), GFLOP/s,
    best of ``repeats`` after one warm-up, with torch's current threads: quoted beside any absolute time, since
    machines (and one machine under load) differ by several times."""
    import time

    import torch

    dtype = torch.float32 if dtype is None else dtype
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(n, n, generator=g, dtype=dtype), torch.randn(n, n, generator=g, dtype=dtype)
    A @ B
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


__all__ = [
    "PACKAGE",
    "matmul_gflops",
    "Provenance",
    "canonical_json",
    "code_hash",
    "dependencies",
    "device_name",
    "git_commit",
]
