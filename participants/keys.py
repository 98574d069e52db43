"""The participant's CKKS secret context, loaded once per process and reloaded if replaced.

Loading a context and building its encryptor costs more than encrypting a small update, and
a participant uses the key every round; the cache is keyed by the file's identity (path,
size, modification time) so a re-provisioned key file is picked up at once.

A SuperNode's process serves one participant, but one worker of Flower's simulation engine
serves every node it is handed: the cache keeps the ``CACHE_SIZE`` contexts used last
(a few MB each), so a worker's memory does not grow with the number of nodes it has served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from privacy.errors import PrivacyError
from privacy.he.secret import SecretContext

#: Secret contexts kept per process, the least recently used dropped first.
CACHE_SIZE = 8

_lock = threading.Lock()
_cache: OrderedDict[Path, tuple[tuple[int, int, int], SecretContext]] = OrderedDict()


def load_secret(path: Path) -> SecretContext:
    """The secret context stored at ``path`` (cached while the file is unchanged)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise PrivacyError(
            f"no CKKS key at {path}: run `fedrisk keys provision FEDERATION.toml` at the "
            "participants first"
        ) from exc
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == identity:
            _cache.move_to_end(path)
            return cached[1]
    context = SecretContext.load(path)
    with _lock:
        _cache[path] = (identity, context)
        _cache.move_to_end(path)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return context


def cached_paths() -> list[Path]:
    """The key files whose contexts are cached, least recently used first."""
    with _lock:
        return list(_cache)
