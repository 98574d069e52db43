"""Shared fixtures for the privacy tests: CKKS key sets are expensive, so one per session."""

from __future__ import annotations

import numpy as np
import pytest

from privacy.he.params import CKKSParams
from privacy.he.public import PublicContext
from privacy.he.secret import SecretContext


@pytest.fixture(scope="session")
def secret_ctx() -> SecretContext:
    """The participants' key set under the default parameters."""
    return SecretContext.generate(CKKSParams())


@pytest.fixture(scope="session")
def public_ctx(secret_ctx: SecretContext) -> PublicContext:
    """The coordinator's view of ``secret_ctx``."""
    return secret_ctx.public()


@pytest.fixture(scope="session")
def other_secret_ctx() -> SecretContext:
    """A second key set with the same parameters (another federation's keys)."""
    return SecretContext.generate(CKKSParams())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)
