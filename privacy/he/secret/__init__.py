"""The participants' side of CKKS: the secret key, encryption, decryption, key provisioning.

Secret material lives only under this package. Participants import it explicitly
(``from privacy.he.secret import SecretContext``); :mod:`privacy.he` never imports it, and
the coordinator must not (``tests/test_architecture.py`` checks both in a fresh process).
"""

from __future__ import annotations

from .context import SecretContext
from .encryption import decrypt_aggregate, encrypt_update
from .provisioning import KeyProvision, provision_keys

__all__ = [
    "KeyProvision",
    "SecretContext",
    "decrypt_aggregate",
    "encrypt_update",
    "provision_keys",
]
