"""Small builders for federations on synthetic data (tests only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_FEATURES = 5
TRUE_WEIGHTS = np.array([1.5, -1.0, 0.8, 0.0, 0.5])


def write_rows(path: Path, *, rows: int, seed: int, id_prefix: str) -> Path:
    """A CSV ``id,y,x0..x4`` whose label follows a logistic model of the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    p = 1.0 / (1.0 + np.exp(-(x @ TRUE_WEIGHTS - 0.5)))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(N_FEATURES)])
    frame.insert(0, "y", (rng.random(rows) < p).astype(int))
    frame.insert(0, "id", [f"{id_prefix}{i:05d}" for i in range(rows)])
    frame.to_csv(path, index=False)
    return path


def schema_block() -> str:
    features = ", ".join(
        f'{{ name = "x{i}", type = "float", min = -20.0, max = 20.0 }}' for i in range(N_FEATURES)
    )
    return f'[schema]\nid = "id"\nlabel = "y"\nfeatures = [ {features} ]\n'


def make_federation(
    root: Path,
    *,
    privacy: str = "none",
    participants: int = 3,
    rows: int = 300,
    rounds: int = 2,
    min_participants: int = 2,
    strategy: str = "fedavg",
    model: str = "logistic",
    name: str = "test-fed",
    dp: str = "",
    extra: str = "",
) -> Path:
    """Write participant CSVs, an evaluation CSV and a federation TOML under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_rows(root / "eval.csv", rows=600, seed=999, id_prefix="E")
    entries = []
    for i in range(participants):
        write_rows(root / f"p{i + 1}.csv", rows=rows, seed=100 + i, id_prefix=f"P{i + 1}-")
        entries.append(f'[[participants]]\nname = "p{i + 1}"\nfile = "p{i + 1}.csv"\n')
    if not dp and "dp" in privacy:
        dp = "[privacy.dp]\ntarget_epsilon = 3.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n"
    text = (
        f'[federation]\nname = "{name}"\nmodel = "{model}"\nmode = "horizontal"\n'
        f'privacy = "{privacy}"\nstrategy = "{strategy}"\nrounds = {rounds}\n'
        f"min_participants = {min_participants}\nlocal_epochs = 1\nbatch_size = 32\n"
        f"learning_rate = 0.1\nseed = 3\n{extra}\n{dp}\n{schema_block()}\n"
        '[evaluation]\nfile = "eval.csv"\n\n' + "\n".join(entries)
    )
    path = root / "federation.toml"
    path.write_text(text, encoding="utf-8")
    return path
