"""save_torch: the same object gives the same file in any process, and torch reads it as its own."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from recipekit.sources.determinism import ID_RECORD, _patch_serialization_id, _rewritten, save_torch

SAVE = """
import sys, torch
from recipekit.sources.determinism import save_torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
save_torch({"model": model, "args": {"imgsz": [64, 64]}}, sys.argv[1])
"""


def _id(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(ID_RECORD)))


@pytest.mark.slow
def test_two_processes_write_the_same_bytes_torch_reads_back(tmp_path):
    import torch

    files = [tmp_path / "a" / "reference.pt", tmp_path / "b" / "reference.pt"]
    for path in files:
        path.parent.mkdir()
        subprocess.run([sys.executable, "-c", SAVE, str(path)], check=True)
    assert files[0].read_bytes() == files[1].read_bytes()
    with zipfile.ZipFile(files[0]) as zf:
        assert zf.testzip() is None  # every CRC-32 right, the patched record's included
        assert {i.date_time for i in zf.infolist()} == {(1980, 0, 0, 0, 0, 0)}  # torch's own archive, patched
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    loaded = torch.load(files[0], weights_only=False)
    assert loaded["args"] == {"imgsz": [64, 64]}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded["model"].state_dict().items())
    plain = io.BytesIO()
    torch.save({"model": model, "args": {"imgsz": [64, 64]}}, plain)
    with zipfile.ZipFile(plain) as zf:
        torch_id = zf.read(next(n for n in zf.namelist() if n.endswith(ID_RECORD)))
    assert _id(files[0]) != torch_id and len(_id(files[0])) == len(torch_id)


def test_other_weights_give_another_id(tmp_path):
    import torch

    ids = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_torch(torch.nn.Linear(4, 2).state_dict(), tmp_path / f"{seed}.pt")
        ids.append(_id(tmp_path / f"{seed}.pt"))
    assert ids[0] != ids[1]
    save_torch(torch.nn.Linear(4, 2).state_dict(), tmp_path / "again.pt")  # seed 1's generator moved on
    assert _id(tmp_path / "again.pt") not in ids


def test_an_archive_not_laid_out_as_torch_does_is_rewritten():
    """Dates set (as a zip written by Python has): not patched in place, rewritten with fixed dates."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(2026, 12, 7, 10, 0, 0)), b"pickle bytes")
        zf.writestr(zipfile.ZipInfo(f"archive/{ID_RECORD}", date_time=(2026, 12, 7, 10, 0, 0)), b"1" * 40)
    before = buf.getvalue()
    assert not _patch_serialization_id(buf)
    assert buf.getvalue() == before  # nothing changed
    with zipfile.ZipFile(_rewritten(buf)) as zf:
        assert zf.testzip() is None
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert zf.read("archive/data.pkl") == b"pickle bytes"
        new_id = zf.read(f"archive/{ID_RECORD}")
    assert len(new_id) == 40 and new_id != b"1" * 40
