"""The participants' shared CKKS secret key, as its own type.

:class:`SecretContext` holds the secret key and can encrypt and decrypt; its public part is
:meth:`SecretContext.public`, a :class:`~privacy.he.public.PublicContext` with the same
fingerprint. Writing a secret key needs ``include_secret_key=True``; files are written with
mode 0600. Only participants import this module (TenSEAL's ``make_context_public`` model).
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import tenseal as ts

from ..._files import atomic_write_bytes
from ...errors import InvalidParametersError, PrivacyError
from .._keyset import (
    MAGIC,
    SECRET,
    KeySet,
    deserialize,
    fingerprint_of,
    open_envelope,
    params_of,
    public_bytes,
    read,
)
from ..params import CKKSParams
from ..public import PublicContext
from .seal import SealCodec

__all__ = ["SecretContext"]

logger = logging.getLogger(__name__)


class SecretContext(KeySet):
    """The participants' shared CKKS secret key (with parameters and public key)."""

    __slots__ = ("_codec_cache", "_decryptions", "_public_bytes", "_public_ts")

    def __init__(self, tenseal_context: ts.Context) -> None:
        if not tenseal_context.is_private():
            raise PrivacyError("a SecretContext needs a TenSEAL context with its secret key")
        self._ts = tenseal_context
        self._params = params_of(tenseal_context)
        self._public_bytes = public_bytes(tenseal_context)
        self._fingerprint = fingerprint_of(self._public_bytes)
        self._decryptions = 0
        self._zeros = {}
        self._codec_cache: SealCodec | None = None
        self._public_ts: ts.Context | None = None

    @classmethod
    def generate(cls, params: CKKSParams | None = None) -> SecretContext:
        """Generate a fresh key set for ``params`` (default :class:`CKKSParams`)."""
        params = params if params is not None else CKKSParams()
        if not isinstance(params, CKKSParams):
            raise InvalidParametersError(f"params must be CKKSParams, got {type(params).__name__}")
        try:
            context = ts.context(
                ts.SCHEME_TYPE.CKKS,
                poly_modulus_degree=params.poly_modulus_degree,
                coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
            )
            context.global_scale = float(2**params.global_scale_bits)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise InvalidParametersError(
                f"TenSEAL rejected CKKS parameters {params}: {exc}"
            ) from exc
        secret = cls(context)
        logger.info(
            "generated a CKKS key set %s (fingerprint %s…)", params, secret.fingerprint[:16]
        )
        return secret

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the serialized public context; equals ``self.public().fingerprint``."""
        return self._fingerprint

    @property
    def decryptions(self) -> int:
        """Aggregates decrypted with this object so far (Li-Micciancio: count decryptions)."""
        return self._decryptions

    def _codec(self) -> SealCodec:
        """Secret-key encryption and complex decoding on this key set (built once)."""
        if self._codec_cache is None:
            self._codec_cache = SealCodec(self._ts)
        return self._codec_cache

    def _public_tenseal(self) -> ts.Context:
        """The public part, so that ciphertexts loaded or summed here cannot be decrypted
        outside :func:`~privacy.he.secret.decrypt_aggregate`."""
        if self._public_ts is None:
            self._public_ts = deserialize(self._public_bytes)
        return self._public_ts

    def public(self) -> PublicContext:
        """The public context of this key set, rebuilt from bytes without the secret key."""
        return PublicContext(deserialize(self._public_bytes), self._public_bytes)

    def serialize(self, *, include_secret_key: bool) -> bytes:
        """The context *with its secret key*; ``include_secret_key=True`` must be explicit.

        Use ``self.public().serialize()`` for the shareable part.
        """
        if include_secret_key is not True:
            raise PrivacyError(
                "SecretContext.serialize writes the secret key and needs include_secret_key=True; "
                "use .public().serialize() for the public context"
            )
        try:
            body: bytes = self._ts.serialize(
                save_public_key=True,
                save_secret_key=True,
                save_galois_keys=False,
                save_relin_keys=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise PrivacyError(f"TenSEAL could not serialize the secret context: {exc}") from exc
        return MAGIC + SECRET + body

    def save(self, path: Path, *, include_secret_key: bool) -> None:
        """Write the secret context atomically with mode 0600."""
        atomic_write_bytes(
            Path(path), self.serialize(include_secret_key=include_secret_key), mode=0o600
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SecretContext:
        kind, body = open_envelope(data)
        if kind != SECRET:
            raise PrivacyError("CKKS data holds no secret key (it is a public context)")
        return cls(deserialize(body))

    @classmethod
    def load(cls, path: Path) -> SecretContext:
        """Read a secret context file written by :meth:`save` or
        :func:`~privacy.he.secret.provision_keys`."""
        path = Path(path)
        data = read(path)
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                logger.warning("CKKS secret key file %s is accessible to group/others", path)
        except OSError:
            pass
        return cls.from_bytes(data)

    def __repr__(self) -> str:
        return f"SecretContext(params={self._params}, fingerprint={self._fingerprint[:16]}…)"
