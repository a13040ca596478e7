"""Result files: atomic replacement, nothing half-written on failure, readable by the lab."""

import os

import pytest

from spinapse.cli import main
from spinapse.io import atomic_path, write_json


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "results.json"
    write_json(dest, {"acc": [0.5]})
    before = dest.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text('{"acc": [0.')  # half a file, then the writer dies
        raise RuntimeError("killed")
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_json_is_deterministic_and_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        a = write_json(tmp_path / "a.json", {"b": 1, "a": [1.5, 2]})
        b = write_json(tmp_path / "b.json", {"a": [1.5, 2], "b": 1})
    finally:
        os.umask(old)
    assert a.read_bytes() == b.read_bytes() == b'{\n  "a": [\n    1.5,\n    2\n  ],\n  "b": 1\n}\n'
    assert a.stat().st_mode & 0o777 == 0o644


def test_mode_without_synapse_is_refused(capsys):
    assert main(["train", "--mode", "device", "--set", "train.epochs=1"]) == 2
    assert "--mode needs --synapse" in capsys.readouterr().err
