"""What a public and a secret CKKS context share: the file envelope, the fingerprint, the
parameters read back from TenSEAL, and ciphertexts bound to the context.

Private to :mod:`privacy.he`. It lives on the public side (it never touches a secret key
itself), so that :mod:`privacy.he.public` needs nothing from :mod:`privacy.he.secret`.

Files are ``fedrisk-ckks/1`` envelopes: a one-line magic, a ``public``/``secret`` line, then
the TenSEAL bytes. The fingerprint is the hex SHA-256 of the TenSEAL serialization of the
*public* part (parameters, scale, public key), identical for a secret context and its public
context.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import tenseal as ts
import tenseal.sealapi  # registers the SEAL types that params_of reads back

from ..errors import ContextMismatchError, InvalidParametersError, InvalidUpdateError, PrivacyError
from .params import CKKSParams

MAGIC = b"fedrisk-ckks/1\n"
PUBLIC = b"public\n"
SECRET = b"secret\n"


class KeySet:
    """Base of both context types: parameters, fingerprint and ciphertexts under one key set.

    It has no constructor of its own; subclasses set every slot. Every ciphertext it hands
    out is bound to a TenSEAL context *without* the secret key (:meth:`_public_tenseal`),
    also when the key set is a :class:`~privacy.he.secret.SecretContext`: such a vector can
    be added but never decrypted, so decryption stays behind ``decrypt_aggregate`` and its
    safeguards.
    """

    __slots__ = ("_fingerprint", "_params", "_ts", "_zeros")

    _fingerprint: str
    _params: CKKSParams
    _ts: ts.Context
    _zeros: dict[int, ts.CKKSVector]

    @property
    def params(self) -> CKKSParams:
        return self._params

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the serialized public context (names the key set)."""
        return self._fingerprint

    def _public_tenseal(self) -> ts.Context:
        """The TenSEAL context without a secret key that handed-out ciphertexts are bound to."""
        raise NotImplementedError

    def load_ciphertext(self, data: bytes) -> ts.CKKSVector:
        """One serialized CKKS vector, bound to the public part of this key set.

        Raises :class:`ContextMismatchError` (made under other parameters) or
        :class:`InvalidUpdateError` (not a ciphertext); the message completes
        ``"<where> chunk <n> "``.
        """
        try:
            return ts.ckks_vector_from(self._public_tenseal(), data)
        except RuntimeError as exc:
            if "invalid" in str(exc):
                raise ContextMismatchError(f"was made under other CKKS parameters: {exc}") from exc
            raise InvalidUpdateError(f"is not a CKKS ciphertext: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidUpdateError(f"is not a CKKS ciphertext: {exc}") from exc

    def encrypted_zeros(self, size: int) -> ts.CKKSVector:
        """A cached encryption of ``size`` zeros (reference for compatibility checks)."""
        if size not in self._zeros:
            try:
                self._zeros[size] = ts.ckks_vector(self._public_tenseal(), [0.0] * size)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise PrivacyError(f"CKKS encryption of {size} zeros failed: {exc}") from exc
        return self._zeros[size]


def fingerprint_of(public_bytes: bytes) -> str:
    """The key set's name: hex SHA-256 of :func:`public_bytes`."""
    return hashlib.sha256(public_bytes).hexdigest()


def public_bytes(context: ts.Context) -> bytes:
    """Canonical TenSEAL bytes of the public part (what the fingerprint hashes)."""
    try:
        data: bytes = context.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise PrivacyError(f"TenSEAL could not serialize the public context: {exc}") from exc
    return data


def params_of(context: ts.Context) -> CKKSParams:
    """Read N, the modulus chain and the scale back from a TenSEAL context."""
    try:
        parms = context.seal_context().data.key_context_data().parms()
        degree = int(parms.poly_modulus_degree())
        sizes = tuple(int(m.bit_count()) for m in parms.coeff_modulus())
        scale = float(context.global_scale)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PrivacyError(f"cannot read CKKS parameters from the context: {exc}") from exc
    scale_bits = math.log2(scale) if scale > 0 else -1.0
    if not scale_bits.is_integer():
        raise InvalidParametersError(f"CKKS global scale {scale} is not a power of two")
    return CKKSParams(
        poly_modulus_degree=degree, coeff_mod_bit_sizes=sizes, global_scale_bits=int(scale_bits)
    )


def open_envelope(data: bytes) -> tuple[bytes, bytes]:
    """Split a ``fedrisk-ckks/1`` envelope into its kind line (:data:`PUBLIC` or
    :data:`SECRET`) and the TenSEAL bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PrivacyError(f"CKKS context data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise PrivacyError("not a fedrisk CKKS context (missing 'fedrisk-ckks/1' header)")
    rest = data[len(MAGIC) :]
    for kind in (PUBLIC, SECRET):
        if rest.startswith(kind):
            return kind, rest[len(kind) :]
    raise PrivacyError("fedrisk CKKS context has an unknown kind line")


def deserialize(body: bytes) -> ts.Context:
    """A TenSEAL context from its bytes; corrupt data is a :class:`PrivacyError`."""
    try:
        context = ts.context_from(body)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PrivacyError(f"corrupt CKKS context data: {exc}") from exc
    return context


def read(path: Path) -> bytes:
    """The bytes of a context file; an unreadable file is a :class:`PrivacyError`."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PrivacyError(f"cannot read CKKS context file {path}: {exc.strerror or exc}") from exc
