"""The participant's secret-context cache: reuse, reload on replacement, bounded size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from participants import keys
from privacy.errors import PrivacyError
from privacy.he.secret.context import SecretContext


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "secret.ckks"
    SecretContext.generate().save(path, include_secret_key=True)
    return path


def _copies(key_file: Path, folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"p{i}" / "secret.ckks"
        path.parent.mkdir()
        path.write_bytes(key_file.read_bytes())
        paths.append(path)
    return paths


def test_a_cached_context_is_reused_until_its_file_changes(key_file: Path, tmp_path: Path) -> None:
    (path,) = _copies(key_file, tmp_path, 1)
    first = keys.load_secret(path)
    assert keys.load_secret(path) is first
    other = tmp_path / "other.ckks"
    SecretContext.generate().save(other, include_secret_key=True)
    os.replace(other, path)  # a re-provisioned key: new inode
    replaced = keys.load_secret(path)
    assert replaced is not first
    assert replaced.fingerprint != first.fingerprint


def test_the_cache_keeps_only_the_most_recently_used_contexts(
    key_file: Path, tmp_path: Path
) -> None:
    paths = _copies(key_file, tmp_path, keys.CACHE_SIZE + 3)
    kept = keys.load_secret(paths[0])
    for path in paths[1:]:
        keys.load_secret(path)
        assert keys.load_secret(paths[0]) is kept  # used last each time, so never dropped
    cached = keys.cached_paths()
    assert len(cached) == keys.CACHE_SIZE
    assert cached[-1] == paths[0]
    assert paths[1] not in cached  # the least recently used went first
    assert paths[-1] in cached


def test_a_missing_key_says_how_to_provision_it(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="fedrisk keys provision"):
        keys.load_secret(tmp_path / "absent.ckks")
