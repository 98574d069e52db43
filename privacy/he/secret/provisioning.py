"""The participants' key ceremony: one CKKS key set shared by every participant.

NVFlare-style HE provisioning: every participant receives the same secret context, the
coordinator only the public context. Run it on the participants' side or in a trusted
ceremony, never by the coordinator.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..._files import atomic_write_bytes
from ...errors import InvalidParametersError
from ..params import CKKSParams
from .context import SecretContext

__all__ = ["KeyProvision", "provision_keys"]

logger = logging.getLogger(__name__)

_COORDINATOR = "coordinator"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class KeyProvision:
    """Where :func:`provision_keys` wrote the key set, and the key set's fingerprint."""

    secret_paths: Mapping[str, Path]
    public_path: Path
    fingerprint: str
    params: CKKSParams


def provision_keys(
    *, out_dir: Path, participants: Sequence[str], params: CKKSParams
) -> KeyProvision:
    """Generate one CKKS key set shared by ``participants``; the coordinator gets the public part.

    Writes ``out_dir/<participant>/secret.ckks`` (mode 0600, directory 0700) for every
    participant and ``out_dir/coordinator/public.ckks``. This is the participants' key
    ceremony (NVFlare's HE provisioning): run it on the participants' side or in a trusted
    ceremony, never by the coordinator, and ship only ``coordinator/public.ckks`` to the
    coordinator. Existing files are replaced.
    """
    names = list(participants)
    if isinstance(participants, str) or not names:
        raise InvalidParametersError(
            f"participants must be a non-empty list of names, got {participants!r}"
        )
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name == _COORDINATOR:
            raise InvalidParametersError(
                f"participant name {name!r} is not a safe directory name "
                f"(letters, digits, '.', '_', '-'; not {_COORDINATOR!r})"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidParametersError(f"participant names repeat: {duplicates}")
    out_dir = Path(out_dir)
    secret = SecretContext.generate(params)
    secret_bytes = secret.serialize(include_secret_key=True)
    paths: dict[str, Path] = {}
    for name in names:
        directory = out_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        paths[name] = directory / "secret.ckks"
        atomic_write_bytes(paths[name], secret_bytes, mode=0o600)
    public_path = out_dir / _COORDINATOR / "public.ckks"
    secret.public().save(public_path)
    logger.info(
        "provisioned a CKKS key set for %d participants in %s (fingerprint %s…)",
        len(names),
        out_dir,
        secret.fingerprint[:16],
    )
    return KeyProvision(
        secret_paths=MappingProxyType(paths),
        public_path=public_path,
        fingerprint=secret.fingerprint,
        params=secret.params,
    )
