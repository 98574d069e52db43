"""The layering rules of DESIGN.md, checked on the source itself.

- ``models`` and ``privacy`` import neither ``coordinator``, ``participants`` nor ``consent``;
- ``coordinator`` and ``participants`` never import each other;
- the coordinator never imports a path that can load a CKKS secret context, checked on the
  source and, in a fresh interpreter, on what importing every coordinator module loads;
- only the entry module ``fedrisk.py`` imports both sides.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("coordinator", "participants", "models", "privacy", "consent", "deploy")
#: Every module holding CKKS secret material lives under this package.
SECRET_PACKAGE = "privacy.he.secret"

FORBIDDEN = {
    "models": {"coordinator", "participants", "consent"},
    "privacy": {"coordinator", "participants", "consent"},
    "coordinator": {"participants"},
    "participants": {"coordinator"},
    "consent": {"coordinator", "participants"},
    "deploy": {"coordinator", "participants", "consent", "privacy"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_downward(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert offenders == []


def test_coordinator_cannot_reach_a_secret_context() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("coordinator")
        for name in _imports(path)
        if name.endswith("SecretContext")
        or name.endswith("provision_keys")
        or name == "tenseal"
        or name == SECRET_PACKAGE
        or name.startswith(f"{SECRET_PACKAGE}.")
    ]
    assert offenders == []


def test_the_secret_package_check_catches_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from privacy.he import secret\n", encoding="utf-8")
    assert SECRET_PACKAGE in _imports(bad)


# Run in a fresh interpreter: import the given modules, then report every loaded module and
# those that hold a SecretContext, whatever their name.
_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
modules = dict(sys.modules)
print(json.dumps({
    "modules": sorted(modules),
    "holders": sorted(
        n for n, m in modules.items() if "SecretContext" in getattr(m, "__dict__", {})
    ),
}))
"""


@dataclass(frozen=True)
class Loaded:
    """What a fresh interpreter had loaded after importing some modules."""

    modules: frozenset[str]
    holders: frozenset[str]

    def under(self, package: str) -> set[str]:
        return {m for m in self.modules if m == package or m.startswith(f"{package}.")}


def _module_names(package: str) -> list[str]:
    names = []
    for path in _modules(package):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@functools.cache
def _loaded_by(*modules: str) -> Loaded:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    return Loaded(frozenset(found["modules"]), frozenset(found["holders"]))


def test_importing_every_coordinator_module_loads_no_secret_context() -> None:
    # Arrange
    modules = _module_names("coordinator")

    # Act
    loaded = _loaded_by(*modules)

    # Assert
    assert len(modules) > 5
    assert loaded.under(SECRET_PACKAGE) == set()
    assert loaded.holders == set()


def test_importing_the_public_he_package_loads_no_secret_context() -> None:
    # Arrange: every privacy.he module outside the secret package.
    modules = [
        name
        for name in _module_names("privacy")
        if name.startswith("privacy.he") and not name.startswith(SECRET_PACKAGE)
    ]

    # Act
    loaded = _loaded_by(*modules)

    # Assert
    assert "privacy.he.public" in modules
    assert loaded.under(SECRET_PACKAGE) == set()
    assert loaded.holders == set()


def test_importing_the_participant_app_does_load_the_secret_context() -> None:
    # The negative case: the probe does see a secret context where one is imported.
    loaded = _loaded_by("participants.client_app")

    assert SECRET_PACKAGE in loaded.under(SECRET_PACKAGE)
    assert f"{SECRET_PACKAGE}.context" in loaded.holders


def test_the_participant_app_does_not_import_opacus() -> None:
    # Flower's deployment engine starts a fresh ClientApp process for every message; Opacus
    # costs seconds to import and is needed only when a round trains with DP.
    loaded = _loaded_by("participants.client_app")

    assert "privacy.dp.accounting" in loaded.modules
    assert loaded.under("opacus") == set()
