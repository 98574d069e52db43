"""Encrypted updates as Flower records, for the coordinator's and participants' messages.

A :class:`~privacy.he.updates.EncryptedUpdate` travels in a Flower ``ConfigRecord`` with
the ciphertext chunks as a list of bytes, so the transport never parses ciphertexts.
"""

from __future__ import annotations

from flwr.app import ConfigRecord

from ..errors import InvalidUpdateError
from .updates import EncryptedUpdate

__all__ = ["record_to_update", "update_to_record"]

_CHUNKS = "chunks"
_LENGTH = "length"
_FINGERPRINT = "fingerprint"
_CHECK = "check-value"


def update_to_record(update: EncryptedUpdate) -> ConfigRecord:
    """The update as a ``ConfigRecord`` (no check slot: the ``check-value`` key is absent)."""
    if not isinstance(update, EncryptedUpdate):
        raise InvalidUpdateError(f"expected an EncryptedUpdate, got {type(update).__name__}")
    record = ConfigRecord(
        {
            _CHUNKS: list(update.chunks),
            _LENGTH: update.length,
            _FINGERPRINT: update.fingerprint,
        }
    )
    if update.check_value is not None:
        record[_CHECK] = update.check_value
    return record


def record_to_update(record: ConfigRecord) -> EncryptedUpdate:
    """Rebuild an update from :func:`update_to_record` output; malformed input is a ValueError."""
    if not isinstance(record, ConfigRecord):
        raise InvalidUpdateError(f"expected a ConfigRecord, got {type(record).__name__}")
    missing = [key for key in (_CHUNKS, _LENGTH, _FINGERPRINT) if key not in record]
    if missing:
        raise InvalidUpdateError(f"encrypted-update record lacks {missing}")
    chunks = record[_CHUNKS]
    if not isinstance(chunks, list):
        raise InvalidUpdateError("encrypted-update record: 'chunks' is not a list of bytes")
    length = record[_LENGTH]
    fingerprint = record[_FINGERPRINT]
    check = record.get(_CHECK)
    if not isinstance(length, int) or not isinstance(fingerprint, str):
        raise InvalidUpdateError("encrypted-update record: bad 'length' or 'fingerprint' type")
    if check is not None and not isinstance(check, (int, float)):
        raise InvalidUpdateError("encrypted-update record: 'check-value' is not a number")
    return EncryptedUpdate(
        chunks=tuple(chunks),  # type: ignore[arg-type]  # element types checked by the class
        length=length,
        fingerprint=fingerprint,
        check_value=None if check is None else float(check),
    )
