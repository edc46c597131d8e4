"""Small saved results: load the one made for exactly this configuration, compute it only when it is absent.

A *result* is numbers (a JSON-able dict) and arrays (NumPy, saved as ``.npz``) -- never weights -- together with
its provenance: where and when it was made, from which commit, for which configuration, and how long it took.
It is stored as two files, ``<name>-<key>.json`` and ``<name>-<key>.npz``, where ``key`` is a hash
(:func:`config_key`) of the configuration and the package version, so a changed setting or a new release never
reads a stale file. Two places are searched, in this order:

* the results shipped with the package, ``gptheory/results/`` (made on a GPU, committed, read-only in use), keyed
  by configuration and version: they cannot be remade on a laptop, so a code change between releases does not
  hide them;
* the local cache, ``$GPTHEORY_CACHE`` or ``~/.cache/gptheory`` (what this machine computed before), keyed by
  configuration, version *and* a hash of the source of the modules that produce the result (:func:`code_hash`):
  edit the model, the training engine or the experiment and the old local result is no longer found.

:func:`cached` is the one call an experiment makes: ``cached("dit_learns", config, compute)`` returns the stored
:class:`Result` or runs ``compute(config)`` once, saves it to the cache and returns it. :func:`ship` is how a GPU
run adds its result to the repository.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parent / "results"
# the modules whose source decides what a computed result holds (part of every local cache key)
CODE_MODULES = ("gp", "schedules", "samplers", "metrics", "model", "train", "analysis", "experiments")


def cache_dir() -> Path:
    """The local cache folder: ``$GPTHEORY_CACHE`` if set, else ``~/.cache/gptheory``."""
    env = os.environ.get("GPTHEORY_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gptheory"


def package_version() -> str:
    """``gptheory.__version__`` (part of every key)."""
    from . import __version__

    return __version__


def _canonical(config: dict) -> str:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict of JSON-able settings, got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        msg = f"config must hold only JSON-able, finite values (str, int, float, bool, lists, dicts): {err}"
        raise ValueError(msg) from err


def code_hash(modules: tuple[str, ...] = CODE_MODULES) -> str:
    """12 hex digits of SHA-256 over the source files of ``gptheory.<module>`` for each of ``modules``."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for m in modules:
        h.update(m.encode() + b"\0" + (root / f"{m}.py").read_bytes() + b"\0")
    return h.hexdigest()[:12]


def config_key(config: dict, version: str | None = None, code: str | None = None) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``config``, the package ``version`` and, for the
    local cache, the ``code`` hash (``None`` for shipped results).

    Key order in ``config`` does not matter; any changed value, another version or other code gives another key.
    """
    version = package_version() if version is None else str(version)
    body = {"config": json.loads(_canonical(config)), "version": version}
    if code is not None:
        body["code"] = str(code)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """The commit the package runs from (``git rev-parse HEAD``, ``+dirty`` with local changes) or ``"unknown"``."""
    repo = Path(__file__).resolve().parent.parent if repo is None else Path(repo)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


def device_name(device=None) -> str:
    """The name of ``device`` (default: CUDA when available, else the CPU): the GPU's
    (``torch.cuda.get_device_name``) or the CPU's with its core count and the threads torch uses."""
    import torch

    from .profiles import device as default_device

    device = default_device() if device is None else torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def provenance(config: dict, wall_seconds: float, profile: str | None = None) -> dict:
    """The provenance fields saved with every result: device, date (UTC, ISO 8601), commit, version, source hash
    (:func:`code_hash`), configuration, wall time."""
    import torch

    return {
        "device": device_name(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "version": package_version(),
        "code": code_hash(),
        "torch": torch.__version__,
        "profile": profile,
        "config": json.loads(_canonical(config)),
        "wall_seconds": float(wall_seconds),
    }


@dataclass
class Result:
    """A loaded or fresh result.

    Attributes:
        name: what it is (e.g. ``"dit_learns"``); numbers: JSON-able dict; arrays: name -> ``np.ndarray``;
        provenance: see :func:`provenance`; path: the ``.json`` file it lives in (``None`` if unsaved);
        loaded: ``True`` when it was read from disk rather than computed in this call.
    """

    name: str
    numbers: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    path: Path | None = None
    loaded: bool = False

    @property
    def config(self) -> dict:
        return self.provenance.get("config", {})


def _stem(name: str, key: str) -> str:
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_' or '-', got {name!r}")
    return f"{name}-{key}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    return obj


def _write(result: Result, directory: Path, key: str) -> Path:
    """Write ``<name>-<key>.json`` (and ``.npz`` for the arrays) via temporary files renamed into place."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = _stem(result.name, key)
    body = {"name": result.name, "key": key, "provenance": result.provenance, "numbers": _jsonable(result.numbers)}
    text = json.dumps(body, indent=1, sort_keys=True, allow_nan=True)
    if result.arrays:
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
        os.close(fd)
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: np.asarray(v) for k, v in result.arrays.items()})
        os.replace(tmp, directory / f"{stem}.npz")
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path = directory / f"{stem}.json"
    os.replace(tmp, path)
    result.path = path
    return path


def save(result: Result, directory: str | os.PathLike | None = None) -> Path:
    """Write ``result`` into the local cache (or ``directory``) under the key of its configuration, version and
    source hash (``result.provenance["config"]``, ``["version"]``, ``["code"]``). Both files are written to
    temporary names and renamed into place, so a reader never sees half a result. Returns the ``.json`` path."""
    p = result.provenance
    key = config_key(p["config"], p["version"], p["code"])
    return _write(result, cache_dir() if directory is None else Path(directory), key)


def ship(result: Result, directory: str | os.PathLike | None = None) -> Path:
    """Write ``result`` among the shipped results (:data:`SHIPPED`, or ``directory``) under the key of its
    configuration and version only. Returns the ``.json`` path."""
    p = result.provenance
    return _write(result, SHIPPED if directory is None else Path(directory), config_key(p["config"], p["version"]))


def read(path: str | os.PathLike) -> Result:
    """Read a result from its ``.json`` path (and the ``.npz`` beside it, if any)."""
    path = Path(path)
    body = json.loads(path.read_text())
    arrays = {}
    npz = path.with_suffix(".npz")
    if npz.exists():
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return Result(body["name"], body["numbers"], arrays, body["provenance"], path=path, loaded=True)


def load(name: str, config: dict, version: str | None = None) -> Result | None:
    """The saved result for exactly ``(name, config, version)``: a shipped one (:data:`SHIPPED`) first, then one in
    the local cache made by the current source (:func:`code_hash`); ``None`` when there is none."""
    shipped_path = SHIPPED / f"{_stem(name, config_key(config, version))}.json"
    local_path = cache_dir() / f"{_stem(name, config_key(config, version, code_hash()))}.json"
    for path in (shipped_path, local_path):
        if path.exists():
            return read(path)
    return None


def shipped(name: str, directory: str | os.PathLike | None = None) -> list[Result]:
    """Every result named ``name`` in the package's ``results/`` folder (any configuration or version), newest first."""
    directory = SHIPPED if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    found = [read(p) for p in sorted(directory.glob(f"{_stem(name, '*')}.json"))]
    found = [r for r in found if r.name == name]
    return sorted(found, key=lambda r: r.provenance.get("date", ""), reverse=True)


def cached(
    name: str,
    config: dict,
    compute: Callable[[dict], tuple[dict, dict[str, np.ndarray]]],
    refresh: bool = False,
    profile: str | None = None,
) -> Result:
    """Load the result for exactly ``config`` (:func:`load`) or compute it, save it to the local cache and return it.

    Args:
        name: the result's name (letters, digits, ``_``, ``-``).
        config: every setting that changes the result (JSON-able); hashed with the package version (and, in the
            cache, the source hash).
        compute: ``compute(config) -> (numbers, arrays)``; called only when no saved result matches (or ``refresh``).
        refresh: ignore saved results and compute anew (the new one replaces the cached file).
        profile: recorded in the provenance.
    """
    if not refresh:
        found = load(name, config)
        if found is not None:
            return found
    start = time.perf_counter()
    numbers, arrays = compute(config)
    result = Result(name, numbers, arrays, provenance(config, time.perf_counter() - start, profile))
    save(result)
    return result


__all__ = [
    "CODE_MODULES",
    "SHIPPED",
    "Result",
    "cache_dir",
    "cached",
    "code_hash",
    "config_key",
    "device_name",
    "git_commit",
    "load",
    "provenance",
    "read",
    "save",
    "ship",
    "shipped",
]
