"""atomic_write: the destination holds the old content or the new one, never a part, and no temporary file stays."""

from __future__ import annotations

import pytest
import torch

from gptheory.atomic import atomic_write


def test_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    for value in (torch.ones(2), torch.zeros(2)):
        with atomic_write(path) as fh:
            torch.save({"a": value}, fh)
    assert torch.equal(torch.load(path)["a"], torch.zeros(2))
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]


def test_an_error_while_writing_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_write(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]
