"""The Markdown report (BENCHMARKS.md) assembled from the results of one run."""

from __future__ import annotations

import re
from typing import Any

from . import PARTS
from .common import fmt, table, verdict


def _summary(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    real = results.get("utility_real")
    if real is not None:
        for t in real["targets"]:
            if t["value"] is None:
                continue
            rows.append(
                [
                    f"utility_real: {t['target']}",
                    t["description"],
                    fmt(t["value"]),
                    f"<= {t['tolerance']}",
                    verdict(t["pass"]),
                ]
            )
    demo = results.get("utility_demo")
    if demo is not None:
        for privacy, margin in demo["margins"].items():
            rows.append(
                [
                    f"utility_demo: federated `{privacy}` beats best single factory",
                    f"AUC(federated) - AUC({demo['best_single']['name']} alone)",
                    fmt(margin, signed=True),
                    "> 0",
                    verdict(demo["pass"][privacy]),
                ]
            )
    cost = results.get("he_cost")
    if cost is not None and cost.get("target") is not None:
        t = cost["target"]
        rows.append(
            [
                "he_cost: he / none per round at 100k parameters",
                "median s/round, ratio",
                f"{t['ratio']:.2f}x",
                f"<= {t['limit']}x",
                verdict(t["pass"]),
            ]
        )
    vertical = results.get("vertical_lr")
    if vertical is not None:
        gap, up = vertical["targets"]["auc_gap"], vertical["targets"]["speedup"]
        rows.append(
            [
                "vertical_lr: CKKS vertical LR vs scikit-learn on joined data",
                "AUC(sklearn) - AUC(vertical LR)",
                fmt(gap["value"], signed=True),
                f"<= {gap['limit']}",
                verdict(gap["pass"]),
            ]
        )
        rows.append(
            [
                "vertical_lr: CKKS vs Paillier, time per epoch",
                "Paillier s / CKKS s, same rows",
                f"{up['value']:.0f}x",
                f">= {up['limit']:.0f}x",
                verdict(up["pass"]),
            ]
        )
    flower = results.get("vertical_flower")
    if flower is not None:
        t = flower["target"]
        rows.append(
            [
                "vertical_flower: CKKS vs plaintext vertical LR through Flower",
                "median s/epoch, ratio",
                f"{t['ratio']:.2f}x",
                f"<= {t['limit']:.0f}x",
                verdict(t["pass"]),
            ]
        )
    split = results.get("split_demo")
    if split is not None:
        for model, margin in split["target"]["margins"].items():
            rows.append(
                [
                    f"split_demo: {model}, split network (cut-layer DP) beats vertical LR",
                    "AUC(split) - AUC(vertical LR), demo size",
                    fmt(margin, signed=True),
                    "> 0",
                    verdict(split["target"]["pass"][model]),
                ]
            )
    serve = results.get("serving")
    if serve is not None:
        labels = {
            "one_part_p99": ("serving: one part (IoT) at 200 requests/s", "p99 latency, ms"),
            "two_parts_p99": ("serving: two parts (farmer credit) at 200 requests/s",
                              "p99 latency, ms"),
            "batch_s": ("serving: batch of 100,000 subjects", "seconds end to end"),
        }  # fmt: skip
        for key, (name, measured) in labels.items():
            t = serve["targets"][key]
            rows.append([name, measured, fmt(t["value"], 1), f"<= {t['limit']:g}",
                         verdict(t["pass"])])  # fmt: skip
    consent = results.get("consent_ledger")
    if consent is not None:
        t = consent["consent"]["target"]
        rows.append(
            [
                f"consent_ledger: consent check at {consent['consent']['grants']:,} grants "
                "(SQLite)",
                "p99 of `store.decide`, ms",
                f"{t['p99_ms']:.3f}",
                f"<= {t['limit_ms']:g}",
                verdict(t["pass"]),
            ]
        )
    decided = results.get("decisions")
    if decided is not None:
        t = decided["target"]
        rows.append(
            [
                f"decisions: the ledger's {decided['replay']['decisions']:,} decisions replayed",
                "`replay_ledger`: reproduced exactly / recorded",
                f"{100 * t['share']:.2f} %",
                f"= {100 * t['required']:g} %",
                verdict(t["pass"]),
            ]
        )
    iot = results.get("iot_real")
    if iot is not None:
        for fed in iot["federations"]:
            for privacy, margin in fed["margins"].items():
                rows.append(
                    [
                        f"iot_real: {fed['name']}, federated `{privacy}` beats best single node",
                        f"AUC(federated) - AUC({fed['best_single']['name']} alone)",
                        fmt(margin, signed=True),
                        "> 0",
                        verdict(fed["pass"][privacy]),
                    ]
                )
    return rows


TUNING = """\
Settings for `utility_real` were chosen once, with an in-process replica of FedAvg that
calls the product's own `participants.local_training.train_round` for each participant (not
re-run by `python -m bench`), then fixed for every privacy mode. What was tried (AUC on the
test split after 10 rounds, 1 local epoch; FATE's data has no separate validation split, so
absolute AUCs are slightly optimistic, while differences between modes are not affected):

| batch | lr | max_grad_norm | `none` | `dp` ε=1 | `dp` ε=3 |
|---|---|---|---|---|---|
| 64 | 0.05 | - | 0.7275 | - | - |
| 256 | 0.2 | 1.0 | 0.7275 | 0.7189 | - |
| 512 | 0.5 | 1.0 | 0.7275 | 0.7208 | 0.7213 |
| 512 | 0.5 | 0.5 | - | 0.7120 | - |
| 512 | 0.5 | 2.0 | - | 0.7268 | 0.7274 |
| **512** | **0.5** | **3.0** | 0.7275 | **0.7294** | **0.7298** |
| 512 | 0.5 | 5.0 | - | 0.7281 | 0.7303 |
| 1024 | 1.0 | 1.0 | - | 0.7203 | - |

`max_grad_norm` matters most under DP: a standardised row has 23 features, so per-record
gradients of the logistic loss have norms of a few units, and clipping them to 1 biases the
model (log-loss 0.53 instead of 0.47). Batches of 512 keep the noise per averaged gradient
small at ε = 1. 20 rounds or 2 local epochs did not help at ε = 1 (more steps, more noise).
"""


def _intro(doc: str | None) -> str:
    """A module docstring without its first line, as one Markdown paragraph."""
    body = (doc or "").split("\n\n", 1)[-1].strip()
    return body.replace("``", "`").replace("\n\n", " ").replace("\n", " ")


def render(document: dict[str, Any], *, workers: int) -> str:
    from . import (
        consent_ledger,
        cross_verification,
        decisions,
        deployment,
        he_cost,
        iot_real,
        monitoring,
        psi_throughput,
        scale,
        serving,
        skewed_splits,
        split_demo,
        utility_demo,
        utility_real,
        vertical_flower,
        vertical_lr,
    )

    results = document["results"]
    machine = document["machine"]
    versions = machine["versions"]
    quick = " (QUICK smoke run: numbers are not meaningful)" if document["quick"] else ""
    lines = [
        f"# fedrisk benchmarks{quick}",
        "",
        "Generated by `python -m bench` (`make bench`); do not edit by hand. This run:",
        "",
        "```bash",
        document["command"],
        "```",
        "",
        f"Total runtime {document['total_s']:.0f} s ({document['total_s'] / 60:.1f} min): "
        + ", ".join(f"{k} {v:.0f} s" for k, v in document["part_s"].items())
        + f". Date {machine['date_utc']}.",
        "",
        "**Read the ratios and differences, not the seconds.** The machine is shared and its "
        "load changes during a run (load average "
        f"{machine['load_average_at_start']} at the start, {machine.get('load_average_at_end')} "
        "at the end), so absolute seconds move from run to run; runs that are compared were "
        "made back to back in the same process.",
        "",
        *[merge_note(u) for u in document.get("updates", [])],
        "",
        "## Targets",
        "",
        table(
            ["target", "measured as", "value", "required", "result"],
            _summary(results) or [["(no target was measured in this run)", "-", "-", "-", "-"]],
        ),
        "",
    ]
    if document["errors"]:
        lines += ["Parts that failed to run:", ""]
        lines += [f"- `{part}`: {error}" for part, error in document["errors"].items()]
        lines += [""]
    sections = (
        ("utility_real", "1. Utility on real data", utility_real, utility_real.markdown),
        ("utility_demo", "2. Utility on the demo scenario", utility_demo, utility_demo.markdown),
        ("he_cost", "3. Cost of CKKS aggregation", he_cost,
         lambda r: he_cost.markdown(r, workers=workers)),
        ("vertical_lr", "4. Vertical logistic regression", vertical_lr, vertical_lr.markdown),
        ("vertical_flower", "5. Vertical LR through Flower", vertical_flower,
         vertical_flower.markdown),
        ("split_demo", "6. Split network vs vertical LR on the demo's data", split_demo,
         split_demo.markdown),
        ("serving", "7. Scoring API under load", serving, serving.markdown),
        ("psi", "8. Private set intersection", psi_throughput, psi_throughput.markdown),
        ("consent_ledger", "9. Consent check and evidence ledger", consent_ledger,
         consent_ledger.markdown),
        ("skewed_splits", "10. Horizontal training on skewed participants", skewed_splits,
         skewed_splits.markdown),
        ("scale", "11. Scale on Flower's simulation engine", scale, scale.markdown),
        ("deployment", "12. Flower's deployment engine: overhead and recovery", deployment,
         deployment.markdown),
        ("decisions", "13. Lending decisions and their replay", decisions, decisions.markdown),
        ("cross_verification", "14. Cross-verification at the factory node",
         cross_verification, cross_verification.markdown),
        ("iot_real", "15. IoT risk federation on real factory data", iot_real,
         iot_real.markdown),
        ("monitoring", "16. Post-loan monitoring and alerts", monitoring, monitoring.markdown),
    )  # fmt: skip
    for part, title, module, body in sections:
        if part not in results:
            continue
        lines += [f"## {title} (`{part}`)", "", _intro(module.__doc__), "", body(results[part])]
        if part == "utility_real":
            lines += ["", "### How the settings were chosen", "", TUNING]
        else:
            lines += [""]
    lines += [
        "## Machine",
        "",
        table(
            ["", ""],
            [
                ["CPU", f"{machine['cpu']}, {machine['cores']} cores"],
                ["memory", f"{machine['memory_gib']} GiB"],
                ["OS / Python", f"{machine['os']} / {machine['python']}"],
                [
                    "torch / flwr / tenseal / opacus",
                    f"{versions['torch']} / {versions['flwr']} / {versions['tenseal']} / "
                    f"{versions['opacus']}",
                ],
                [
                    "scikit-learn / numpy / ray",
                    f"{versions['scikit-learn']} / {versions['numpy']} / {versions['ray']}",
                ],
                ["code", f"git {machine['git']}"],
                ["date", machine["date_utc"]],
            ],
        ),
        "",
        "Raw numbers (every round's duration and AUC, every timing sample): "
        "`bench/out/results.json`.",
        "",
    ]
    return "\n".join(lines)


def merge_note(update: dict[str, Any]) -> str:
    """The line that says which parts were re-run later and merged in."""
    return (
        f"Parts re-run later and merged in: {', '.join(update['parts'])} on {update['date_utc']} "
        f"(`{update['command']}`, load average {update['load_average'][0]} to "
        f"{update['load_average'][1]})."
    )


def _section(markdown: str, part: str) -> tuple[int, int] | None:
    """Where the section of ``part`` starts and ends in a rendered document."""
    found = re.search(rf"^## [^\n]*\(`{re.escape(part)}`\)$", markdown, flags=re.MULTILINE)
    if found is None:
        return None
    following = re.compile(r"^## ", flags=re.MULTILINE).search(markdown, found.end())
    return found.start(), following.start() if following else len(markdown)


def _insertion_point(markdown: str, part: str) -> int:
    """Where a section of ``part`` goes in ``markdown``, which lacks one: before the section
    of the first part after it in PARTS order, else before the machine section."""
    later = PARTS[PARTS.index(part) + 1 :] if part in PARTS else ()
    for other in later:
        found = _section(markdown, other)
        if found is not None:
            return found[0]
    return markdown.index("## Machine")


def splice(existing: str, fresh: str, parts: list[str], note: str) -> str:
    """``existing`` (BENCHMARKS.md of an earlier run) with the sections and target rows of
    ``parts`` replaced by those of ``fresh`` (this run's rendering), and ``note`` added to
    the merge notes; the rest of ``existing`` is kept as it was."""
    out = existing
    for part in parts:
        new = _section(fresh, part)
        if new is None:  # the part failed: keep the earlier figures
            continue
        old = _section(out, part)
        text = fresh[new[0] : new[1]]
        if old is None:  # new in this document: before the first later part it has
            at = _insertion_point(out, part)
            out = out[:at] + text + out[at:]
        else:
            out = out[: old[0]] + text + out[old[1] :]

    def is_row(line: str) -> bool:
        return any(line.startswith(f"| {part}:") for part in parts)

    lines = out.split("\n")
    rows = [line for line in fresh.split("\n") if is_row(line)]
    if rows:
        at = next((k for k, line in enumerate(lines) if is_row(line)), None)
        if at is None:  # after the targets table's last row
            start = lines.index("## Targets")
            at = next(k for k in range(start + 4, len(lines)) if not lines[k].startswith("|"))
        lines = (
            [line for line in lines[:at] if not is_row(line)]
            + rows
            + [line for line in lines[at:] if not is_row(line)]
        )
    notes = [k for k, line in enumerate(lines) if line.startswith("Parts re-run later")]
    at = notes[-1] + 1 if notes else lines.index("## Targets") - 1
    lines.insert(at, note)
    return "\n".join(lines)
