"""Files that are written whole or not at all: :func:`atomic_write`.

A writer fills a temporary file in the destination's folder; only when it finishes without an error is the file
moved onto the destination with ``os.replace`` (atomic on POSIX and Windows), so a reader -- or a run resumed after
an interruption -- sees either the old file or the new one, never half of one. Used for training checkpoints and
result files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary file handle whose content replaces ``path`` when the ``with`` block ends without an error.

    The parent folder is created if needed. On an error the temporary file is removed and ``path`` is untouched.

    Example: ``with atomic_write(p) as fh: torch.save(state, fh)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
