"""The coordinator's side of a CKKS key set: parameters and public key, no decryption path.

:class:`PublicContext` holds only the public key and parameters, which is all the
coordinator needs to add ciphertexts (TenSEAL's ``make_context_public`` model).
:meth:`PublicContext.load` refuses any file that holds a secret key, so a coordinator
process never has one in memory; and nothing on this side imports
:mod:`privacy.he.secret`, so the coordinator's code cannot even load the secret type.

:class:`CKKSContext` is what the public operations (:func:`~privacy.he.updates.validate_update`,
:func:`~privacy.he.updates.sum_encrypted`) need from a key set. A :class:`PublicContext`
has it, and so has the participants' ``SecretContext``, without this module knowing that
type.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import tenseal as ts

from .._files import atomic_write_bytes
from ..errors import PrivacyError
from ._keyset import (
    MAGIC,
    PUBLIC,
    SECRET,
    KeySet,
    deserialize,
    fingerprint_of,
    open_envelope,
    params_of,
    public_bytes,
    read,
)
from .params import CKKSParams

__all__ = ["CKKSContext", "PublicContext"]

logger = logging.getLogger(__name__)


@runtime_checkable
class CKKSContext(Protocol):
    """A CKKS key set as the public operations see it: parameters, fingerprint, ciphertexts."""

    @property
    def params(self) -> CKKSParams: ...

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the serialized public context (names the key set)."""
        ...

    def load_ciphertext(self, data: bytes) -> ts.CKKSVector:
        """One serialized CKKS vector, bound to the public part of this key set: it can be
        added, never decrypted (errors from :mod:`privacy.errors`)."""
        ...

    def encrypted_zeros(self, size: int) -> ts.CKKSVector:
        """An encryption of ``size`` zeros under this key set."""
        ...


class PublicContext(KeySet):
    """CKKS parameters and public key: enough to add ciphertexts, never to decrypt them."""

    __slots__ = ("_public_bytes",)

    def __init__(self, tenseal_context: ts.Context, public_bytes: bytes) -> None:
        if tenseal_context.is_private():
            raise PrivacyError("a PublicContext cannot hold a secret key")
        self._ts = tenseal_context
        self._public_bytes = public_bytes
        self._params = params_of(tenseal_context)
        self._fingerprint = fingerprint_of(public_bytes)
        self._zeros = {}

    def _public_tenseal(self) -> ts.Context:
        return self._ts

    def serialize(self) -> bytes:
        """The public context as a ``fedrisk-ckks/1`` envelope."""
        return MAGIC + PUBLIC + self._public_bytes

    def save(self, path: Path) -> None:
        """Write the public context atomically (mode 0644: it is not secret)."""
        atomic_write_bytes(Path(path), self.serialize(), mode=0o644)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicContext:
        """Load a public context; data holding a secret key is refused before it is parsed."""
        kind, body = open_envelope(data)
        if kind == SECRET:
            raise PrivacyError(
                "refusing to load a CKKS secret key as a public context: the coordinator "
                "may only ever hold the public context (coordinator/public.ckks)"
            )
        context = deserialize(body)
        if context.is_private():  # a secret key behind a 'public' header
            raise PrivacyError("CKKS data labelled public holds a secret key; refusing it")
        return cls(context, public_bytes(context))

    @classmethod
    def load(cls, path: Path) -> PublicContext:
        """Read a public context file; a file with a secret key is a :class:`PrivacyError`."""
        return cls.from_bytes(read(Path(path)))

    def __repr__(self) -> str:
        return f"PublicContext(params={self._params}, fingerprint={self._fingerprint[:16]}…)"
