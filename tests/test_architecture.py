"""The layering rules of DESIGN.md, checked on the source itself.

- ``models`` and ``privacy`` import neither ``coordinator``, ``participants`` nor ``consent``;
- ``coordinator`` and ``participants`` never import each other;
- the coordinator never imports a path that can load a CKKS secret context;
- only the entry module ``fedrisk.py`` imports both sides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("coordinator", "participants", "models", "privacy", "consent")

FORBIDDEN = {
    "models": {"coordinator", "participants", "consent"},
    "privacy": {"coordinator", "participants", "consent"},
    "coordinator": {"participants"},
    "participants": {"coordinator"},
    "consent": {"coordinator", "participants"},
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
        if name.endswith("SecretContext") or name.endswith("provision_keys") or name == "tenseal"
    ]
    assert offenders == []


def test_only_the_entry_module_imports_both_sides() -> None:
    both = [
        path.relative_to(ROOT)
        for path in [*ROOT.glob("*.py"), *(p for pkg in PACKAGES for p in _modules(pkg))]
        if {"coordinator", "participants"} <= {n.split(".")[0] for n in _imports(path)}
    ]
    assert [str(p) for p in both] == ["fedrisk.py"]


def test_a_forbidden_import_would_be_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from participants.client_app import app\n", encoding="utf-8")
    assert "participants.client_app" in _imports(bad)
