"""The README's lending-app example, run as written against a real `fedrisk serve`.

The demo's farmer-credit federation is generated small and trained in process (Flower's
round logic on an in-process grid); then `fedrisk serve` runs as its own process on free
loopback ports and the README's shell block runs verbatim under bash, in a folder laid out
as the project root after `make demo` (``.venv``, ``examples``, ``fedrisk-demo``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models.federation import load_federation
from participants.demo import generate_scenario, write_vertical_federation
from tests.support.serving import publish_vertical

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> str:
    """The first ```bash block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    match = re.search(r"```bash\n(.*?)```", after, flags=re.DOTALL)
    assert match is not None, f"no bash block after {heading!r}"
    return match.group(1)


def free_ports(n: int) -> list[int]:
    """``n`` consecutive free loopback ports (the nodes listen on NODE_PORT + k)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + n > 65535:
            continue
        try:
            held = []
            for port in range(first, first + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return list(range(first, first + n))
    raise RuntimeError("no run of free loopback ports")


def trained_demo(root: Path) -> Path:
    """A small demo folder with a published demo-farmer-credit model (bank x gov)."""
    demo = root / "fedrisk-demo"
    manifest = generate_scenario(
        demo, n_farmers=400, n_smes=40, n_factories=1, firms_per_factory=5, n_eval_firms=5
    )
    path = write_vertical_federation(
        manifest, demo / "farmer-credit-federation.toml", model="farmer_credit",
        privacy="none", epochs=2,
    )  # fmt: skip
    publish_vertical(load_federation(path))
    return demo


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(project-like folder, API URL) with `fedrisk serve` running there."""
    trained_demo(tmp_path)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    api_port, node_port = free_ports(1)[0], free_ports(2)[0]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "fedrisk", "serve", "--port", str(api_port),
         "--node-port", str(node_port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fedrisk serve did not get ready in 90 s"
            time.sleep(0.3)
        yield tmp_path, url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_the_readme_lending_app_example_runs_as_written(served: tuple[Path, str]) -> None:
    folder, url = served
    block = readme_block("**A lending app, end to end**")
    bash = shutil.which("bash")
    assert bash is not None

    result = subprocess.run(
        [bash, "-euo", "pipefail", "-c", block],
        cwd=folder, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "FEDRISK_API_URL": url, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "consent recorded: grant" in result.stdout
    assert re.search(r"F\d+: score 0\.\d{3}, band [A-E], model v1, evidence ev-", result.stdout)
    assert "HTTP 403, never_granted" in result.stdout
    assert "VALID" in result.stdout + result.stderr
