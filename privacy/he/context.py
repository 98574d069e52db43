"""CKKS key material with distinct types for the secret and the public side.

:class:`SecretContext` holds the participants' shared secret key and can encrypt and
decrypt; :class:`PublicContext` holds only the public key and parameters, which is all the
coordinator needs to add ciphertexts, and has no decryption path at all (TenSEAL's
``make_context_public`` model). Writing a secret key needs ``include_secret_key=True``,
and :meth:`PublicContext.load` refuses any file that holds one, so a coordinator process
never has a secret key in memory.

Both types expose a :attr:`fingerprint`: the hex SHA-256 of the TenSEAL serialization of
the *public* part (parameters, scale, public key), identical for a secret context and its
public context. Updates carry it so that the coordinator can reject a ciphertext made under
another key set before adding it.

Files are ``fedrisk-ckks/1`` envelopes: a one-line magic, a ``public``/``secret`` line, then
the TenSEAL bytes. Keys are provisioned by :func:`provision_keys`, NVFlare-style: one secret
context shared by all participants, a public context for the coordinator.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import tenseal as ts
import tenseal.sealapi  # registers the SEAL types that _params_of reads back

from .._files import atomic_write_bytes
from ..errors import InvalidParametersError, PrivacyError
from .params import CKKSParams

__all__ = ["KeyProvision", "PublicContext", "SecretContext", "provision_keys"]

logger = logging.getLogger(__name__)

_MAGIC = b"fedrisk-ckks/1\n"
_PUBLIC = b"public\n"
_SECRET = b"secret\n"
_COORDINATOR = "coordinator"
#: Protobuf field 4 (TenSEALContextProto.encryption_type), varint 1 = SYMMETRIC.
_SYMMETRIC_FIELD = b"\x20\x01"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class PublicContext:
    """CKKS parameters and public key: enough to add ciphertexts, never to decrypt them."""

    __slots__ = ("_fingerprint", "_params", "_public_bytes", "_ts", "_zeros")

    def __init__(self, tenseal_context: ts.Context, public_bytes: bytes) -> None:
        if tenseal_context.is_private():
            raise PrivacyError("a PublicContext cannot hold a secret key")
        self._ts = tenseal_context
        self._public_bytes = public_bytes
        self._params = _params_of(tenseal_context)
        self._fingerprint = hashlib.sha256(public_bytes).hexdigest()
        self._zeros: dict[int, ts.CKKSVector] = {}

    @property
    def params(self) -> CKKSParams:
        return self._params

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the serialized public context (names the key set)."""
        return self._fingerprint

    def serialize(self) -> bytes:
        """The public context as a ``fedrisk-ckks/1`` envelope."""
        return _MAGIC + _PUBLIC + self._public_bytes

    def save(self, path: Path) -> None:
        """Write the public context atomically (mode 0644: it is not secret)."""
        atomic_write_bytes(Path(path), self.serialize(), mode=0o644)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicContext:
        """Load a public context; data holding a secret key is refused before it is parsed."""
        kind, body = _open_envelope(data)
        if kind == _SECRET:
            raise PrivacyError(
                "refusing to load a CKKS secret key as a public context: the coordinator "
                "may only ever hold the public context (coordinator/public.ckks)"
            )
        context = _deserialize(body)
        if context.is_private():  # a secret key behind a 'public' header
            raise PrivacyError("CKKS data labelled public holds a secret key; refusing it")
        return cls(context, _public_bytes(context))

    @classmethod
    def load(cls, path: Path) -> PublicContext:
        """Read a public context file; a file with a secret key is a :class:`PrivacyError`."""
        return cls.from_bytes(_read(Path(path)))

    def __repr__(self) -> str:
        return f"PublicContext(params={self._params}, fingerprint={self._fingerprint[:16]}…)"


class SecretContext:
    """The participants' shared CKKS secret key (with parameters and public key)."""

    __slots__ = (
        "_decryptions",
        "_encryptor",
        "_fingerprint",
        "_params",
        "_public_bytes",
        "_ts",
        "_zeros",
    )

    def __init__(self, tenseal_context: ts.Context) -> None:
        if not tenseal_context.is_private():
            raise PrivacyError("a SecretContext needs a TenSEAL context with its secret key")
        self._ts = tenseal_context
        self._params = _params_of(tenseal_context)
        self._public_bytes = _public_bytes(tenseal_context)
        self._fingerprint = hashlib.sha256(self._public_bytes).hexdigest()
        self._decryptions = 0
        self._zeros: dict[int, ts.CKKSVector] = {}
        self._encryptor: ts.Context | None = None

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
    def params(self) -> CKKSParams:
        return self._params

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the serialized public context; equals ``self.public().fingerprint``."""
        return self._fingerprint

    @property
    def decryptions(self) -> int:
        """Aggregates decrypted with this object so far (Li-Micciancio: count decryptions)."""
        return self._decryptions

    def _encrypting_context(self) -> ts.Context:
        """The context that encrypts: a symmetric-key twin of this one where possible.

        A participant holds the secret key, so it can encrypt with it directly (RLWE
        secret-key encryption, as secure as public-key encryption and, measured here, about
        2x faster: 0.06 s instead of 0.12 s for 100 000 values). The ciphertexts are
        ordinary ones of the same parameters, so the coordinator adds them and this context
        decrypts them unchanged. If the twin cannot be built or fails its self-test, public-
        key encryption is used instead.
        """
        if self._encryptor is None:
            self._encryptor = _symmetric_twin(self._ts) or self._ts
        return self._encryptor

    def public(self) -> PublicContext:
        """The public context of this key set, rebuilt from bytes without the secret key."""
        return PublicContext(_deserialize(self._public_bytes), self._public_bytes)

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
        return _MAGIC + _SECRET + body

    def save(self, path: Path, *, include_secret_key: bool) -> None:
        """Write the secret context atomically with mode 0600."""
        atomic_write_bytes(
            Path(path), self.serialize(include_secret_key=include_secret_key), mode=0o600
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SecretContext:
        kind, body = _open_envelope(data)
        if kind != _SECRET:
            raise PrivacyError("CKKS data holds no secret key (it is a public context)")
        return cls(_deserialize(body))

    @classmethod
    def load(cls, path: Path) -> SecretContext:
        """Read a secret context file written by :meth:`save` or :func:`provision_keys`."""
        path = Path(path)
        data = _read(path)
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                logger.warning("CKKS secret key file %s is accessible to group/others", path)
        except OSError:
            pass
        return cls.from_bytes(data)

    def __repr__(self) -> str:
        return f"SecretContext(params={self._params}, fingerprint={self._fingerprint[:16]}…)"


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


def _symmetric_twin(context: ts.Context) -> ts.Context | None:
    """The same secret key in a TenSEAL context of encryption type SYMMETRIC, self-tested.

    TenSEAL has no API for this, so the private serialization (TenSEALContextProto) gets
    ``encryption_type = SYMMETRIC`` appended: field 4, varint 1 (a later occurrence of a
    scalar field wins when protobuf parses). The result must decrypt correctly under
    ``context`` or it is discarded.
    """
    try:
        body = context.serialize(
            save_public_key=False,
            save_secret_key=True,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        twin = ts.context_from(body + _SYMMETRIC_FIELD)
        probe = [0.5, -1.25, 3.0]
        sealed = ts.ckks_vector(twin, probe).serialize()
        back = ts.ckks_vector_from(context, sealed).decrypt()
        if twin.is_private() and all(abs(a - b) < 1e-6 for a, b in zip(back, probe, strict=True)):
            return twin
        logger.warning("symmetric CKKS encryption failed its self-test; using the public key")
    except (ValueError, RuntimeError, TypeError) as exc:
        logger.warning("symmetric CKKS encryption unavailable (%s); using the public key", exc)
    return None


def _public_bytes(context: ts.Context) -> bytes:
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


def _params_of(context: ts.Context) -> CKKSParams:
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


def _open_envelope(data: bytes) -> tuple[bytes, bytes]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PrivacyError(f"CKKS context data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(_MAGIC):
        raise PrivacyError("not a fedrisk CKKS context (missing 'fedrisk-ckks/1' header)")
    rest = data[len(_MAGIC) :]
    for kind in (_PUBLIC, _SECRET):
        if rest.startswith(kind):
            return kind, rest[len(kind) :]
    raise PrivacyError("fedrisk CKKS context has an unknown kind line")


def _deserialize(body: bytes) -> ts.Context:
    try:
        context = ts.context_from(body)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PrivacyError(f"corrupt CKKS context data: {exc}") from exc
    return context


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PrivacyError(f"cannot read CKKS context file {path}: {exc.strerror or exc}") from exc
