import os
import stat

import pytest

from l1tagger.utils.atomic import atomic_path, atomic_write_json


def test_failed_write_keeps_previous_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert p.read_text().strip().startswith("{") and '"v": 1' in p.read_text()
    assert [x.name for x in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_artifact_permissions_follow_umask(tmp_path):
    p = atomic_write_json(tmp_path / "b.json", {})
    mode = stat.S_IMODE(os.stat(p).st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
