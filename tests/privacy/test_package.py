"""Package-level rules: error hierarchy, import direction, public names."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import privacy
import privacy.dp
import privacy.he
import privacy.he.secret
import privacy.psi
from privacy.errors import (
    BudgetExceededError,
    ContextMismatchError,
    DecryptionError,
    InvalidParametersError,
    InvalidUpdateError,
    PrivacyError,
    PSIError,
)

PACKAGE_ROOT = Path(privacy.__file__).parent
FORBIDDEN = {"coordinator", "participants", "consent"}


def test_every_error_derives_from_privacy_error() -> None:
    # Arrange
    errors = [
        BudgetExceededError,
        ContextMismatchError,
        DecryptionError,
        InvalidParametersError,
        InvalidUpdateError,
        PSIError,
    ]

    # Act / Assert
    assert all(issubclass(e, PrivacyError) for e in errors)
    assert issubclass(InvalidParametersError, ValueError)
    assert issubclass(InvalidUpdateError, ValueError)
    assert issubclass(PSIError, ValueError)


def test_privacy_imports_no_higher_package() -> None:
    # Arrange
    offenders = []

    # Act
    for path in PACKAGE_ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            offenders += [f"{path.name}: {root}" for root in roots & FORBIDDEN]

    # Assert
    assert offenders == []


def test_public_names_are_sorted_and_exist() -> None:
    for module in (privacy, privacy.dp, privacy.he, privacy.he.secret, privacy.psi):
        assert list(module.__all__) == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


def test_importing_the_privacy_packages_loads_no_opacus_torch_or_secret() -> None:
    # Arrange: a fresh interpreter, so that nothing is loaded already.
    probe = (
        "import json, sys, privacy, privacy.dp, privacy.dp.budget, privacy.he, privacy.he.records;"
        "print(json.dumps(sorted(sys.modules)))"
    )

    # Act
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PACKAGE_ROOT.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))

    # Assert
    heavy = {m for m in loaded if m.split(".")[0] in {"opacus", "torch"}}
    assert heavy == set()
    assert not any(m.startswith("privacy.he.secret") for m in loaded)
    assert "privacy.he.public" in loaded
