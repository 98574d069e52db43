"""The consent package's ``fedrisk`` sub-commands: ``fedrisk ledger ...``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from consent.errors import ConsentError
from consent.ledger import EvidenceLog
from consent.ledger.certificate import certificate_text, make_certificate, verify_certificate
from consent.ledger.retention import purge_expired
from consent.ledger.signing import PUBLIC_FILE

app = typer.Typer(no_args_is_help=True)
ledger_cli = typer.Typer(help="The evidence ledger (RFC 6962 Merkle log).", no_args_is_help=True)
app.add_typer(ledger_cli, name="ledger")

DEFAULT_LEDGER = Path(os.environ.get("FEDRISK_LEDGER", "fedrisk-demo/runs/ledger"))
LedgerOption = Annotated[
    Path, typer.Option(help="Ledger directory (env FEDRISK_LEDGER).", envvar="FEDRISK_LEDGER")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        help="The ledger's published Ed25519 key (hex, or a file holding it).",
    ),
]

console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error[/]: {message}")
    return typer.Exit(code=1)


def _public_key(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    text = path.read_text(encoding="ascii") if path.is_file() else value
    key = text.strip().lower()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise _fail(f"--public-key must be 64 hex digits or a file of them, got {value!r}")
    return key


@ledger_cli.command()
def verify(ledger: LedgerOption = DEFAULT_LEDGER, public_key: KeyOption = None) -> None:
    """Recompute the whole log from its entries and check every signed tree head."""
    try:
        with EvidenceLog.in_folder(ledger, read_only=True) as log:
            report = log.verify(public_key=_public_key(public_key) or _published(ledger))
    except ConsentError as exc:
        raise _fail(str(exc)) from None
    if not report.ok:
        for problem in report.problems:
            console.print(f"[bold red]FAIL[/]: {problem}")
        raise typer.Exit(code=1)
    typer.echo(
        f"ledger OK: {report.entries} entries, {report.heads} signed tree heads, "
        f"root {report.root_hash}"
    )


@ledger_cli.command()
def prove(
    evidence_id: Annotated[str, typer.Argument(help="An evidence id, e.g. ev-12-3f2a...")],
    ledger: LedgerOption = DEFAULT_LEDGER,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the certificate's JSON here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Print the evidence certificate of one entry (checkable with `fedrisk ledger check`)."""
    try:
        with EvidenceLog.in_folder(ledger) as log:
            certificate = make_certificate(log, evidence_id)
    except ConsentError as exc:
        raise _fail(str(exc)) from None
    document = json.dumps(certificate, indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(document + "\n", encoding="utf-8")
    check = verify_certificate(certificate, public_key=_published(ledger))
    typer.echo(document if as_json else certificate_text(certificate, check))


@ledger_cli.command()
def check(
    certificate: Annotated[Path, typer.Argument(help="A certificate's JSON file.")],
    public_key: KeyOption = None,
) -> None:
    """Check an evidence certificate with nothing but the ledger's published key."""
    try:
        document = json.loads(certificate.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {certificate}: {exc}") from None
    if not isinstance(document, dict):
        raise _fail(f"{certificate} does not hold a certificate object")
    result = verify_certificate(document, public_key=_public_key(public_key))
    typer.echo(certificate_text(document, result))
    if not result.ok:
        raise typer.Exit(code=1)


@ledger_cli.command()
def purge(
    ledger: LedgerOption = DEFAULT_LEDGER,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be purged; change nothing.")
    ] = False,
) -> None:
    """Delete scoring decisions and review requests older than five years (negative credit
    information, REFERENCE.md behaviour 13); their leaf hashes and every proof stay."""
    try:
        with EvidenceLog.in_folder(ledger) as log:
            report = purge_expired(log, dry_run=dry_run)
    except ConsentError as exc:
        raise _fail(str(exc)) from None
    cutoff = report.cutoff.date().isoformat()
    if report.dry_run:
        typer.echo(f"would purge {report.purged} entries from before {cutoff}; {report.kept} kept")
    elif report.record is None:
        typer.echo(f"nothing to purge: no decision before {cutoff} ({report.kept} kept)")
    else:
        typer.echo(
            f"purged {report.purged} entries from before {cutoff} ({report.kept} kept); "
            f"purge record {report.record}"
        )


@ledger_cli.command()
def head(ledger: LedgerOption = DEFAULT_LEDGER) -> None:
    """Sign and print the log's current tree head (publish it for auditors)."""
    try:
        with EvidenceLog.in_folder(ledger) as log:
            signed = log.sign_head()
    except ConsentError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(signed.to_dict(), indent=2))


def _published(ledger: Path) -> str | None:
    path = ledger / PUBLIC_FILE
    return path.read_text(encoding="ascii").strip() if path.is_file() else None
