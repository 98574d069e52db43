"""The participant's CKKS secret context, loaded once per process and reloaded if replaced.

Loading a context and building its encryptor costs more than encrypting a small update, and
a participant uses the key every round; the cache is keyed by the file's identity (path,
size, modification time) so a re-provisioned key file is picked up at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from privacy.errors import PrivacyError
from privacy.he.secret import SecretContext

_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int, int], SecretContext]] = {}


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
            return cached[1]
    context = SecretContext.load(path)
    with _lock:
        _cache[path] = (identity, context)
    return context
