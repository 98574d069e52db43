"""The participants' ``fedrisk`` sub-commands: key set-up and data checks at the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from models.errors import ModelsError
from models.federation import FederationSpec, load_federation
from models.layout import public_key_path, secret_key_path
from models.tabular import infer_schema
from privacy.he.params import CKKSParams
from privacy.he.secret import provision_keys

from .local_data import load_eligible
from .node_cli import keys_node, node_cli

app = typer.Typer(no_args_is_help=True)
keys_cli = typer.Typer(help="Keys and certificates for a federation.", no_args_is_help=True)
data_cli = typer.Typer(help="Check a participant's data against its schema.", no_args_is_help=True)
app.add_typer(keys_cli, name="keys")
app.add_typer(data_cli, name="data")
app.add_typer(node_cli, name="node")
keys_cli.command("node")(keys_node)


#: The widest a table gets in a log (beyond it, cells fold onto more lines).
LOG_MAX_WIDTH = 400


def _print_table(console: Console, table: Table) -> None:
    """Print ``table`` with every cell whole: folded, not cut to "…", in a terminal; as wide
    as its content in a log, where rich assumes 80 columns. (The coordinator's
    ``print_table`` does the same; the two sides share no module above ``models``.)"""
    for column in table.columns:
        column.overflow = "fold"
    if not console.is_terminal:
        natural = Measurement.get(console, console.options.update_width(LOG_MAX_WIDTH), table)
        if natural.maximum > console.width:
            table.width = natural.maximum
            console.print(table, crop=False)
            return
    console.print(table)


def ensure_keys(spec: FederationSpec, *, console: Console, force: bool = False) -> None:
    """Provision the participants' shared CKKS key set if a CKKS mode needs it and it is missing.

    This is the participants' key ceremony (NVFlare-style provisioning): one secret context
    shared by the participants, a public context for the coordinator. Run on one machine it
    stands in for the real ceremony; in a deployment run ``fedrisk keys provision`` on the
    participants' side and copy only ``coordinator/public.ckks`` to the coordinator.
    """
    if not spec.privacy.uses_he or spec.mode == "vertical":
        return  # a vertical guest makes a fresh key set of its own for every run
    names = [p.name for p in spec.participants]
    have = public_key_path(spec).exists() and all(secret_key_path(spec, n).exists() for n in names)
    if have and not force:
        return
    params = CKKSParams(
        poly_modulus_degree=spec.he.poly_modulus_degree,
        coeff_mod_bit_sizes=tuple(spec.he.coeff_mod_bit_sizes),
        global_scale_bits=spec.he.global_scale_bits,
    )
    provision = provision_keys(out_dir=spec.he.keys_dir, participants=names, params=params)
    console.print(
        f"Provisioned a CKKS key set for {len(names)} participants in {spec.he.keys_dir} "
        f"(fingerprint {provision.fingerprint[:16]}…); the coordinator gets the public part only."
    )


@keys_cli.command("provision")
def provision(
    federation: Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)],
    force: Annotated[bool, typer.Option(help="Replace an existing key set.")] = False,
) -> None:
    """Generate the participants' shared CKKS key set and the coordinator's public context."""
    ensure_keys(load_federation(federation), console=Console(stderr=True), force=force)


@data_cli.command("check")
def check(
    federation: Annotated[Path, typer.Argument(help="Federation file (TOML).", exists=True)],
    participant: Annotated[
        str | None, typer.Option(help="Check only this participant (default: all local ones).")
    ] = None,
) -> None:
    """Load each participant's file, validate it against the schema, count consented rows."""
    spec = load_federation(federation)
    console = Console()
    table = Table("participant", "file", "rows", "consented", "excluded", "status")
    failed = False
    for p in spec.participants:
        if participant is not None and p.name != participant:
            continue
        try:
            eligible = load_eligible(spec, p)
        except (ModelsError, OSError, ValueError) as exc:
            failed = True
            table.add_row(p.name, str(p.file), "-", "-", "-", f"[red]{exc}[/]")
            continue
        excluded = ", ".join(f"{k} {v}" for k, v in sorted(eligible.excluded.items())) or "-"
        table.add_row(
            p.name,
            str(p.file),
            str(eligible.rows_total),
            str(eligible.rows_used),
            excluded,
            "[green]ok[/]",
        )
    _print_table(console, table)
    if failed:
        raise typer.Exit(code=1)


@data_cli.command("infer-schema")
def infer(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file.", exists=True)],
    id_column: Annotated[str, typer.Option("--id", help="Id column.")],
    label_column: Annotated[str | None, typer.Option("--label", help="Label column.")] = None,
) -> None:
    # The help is rich markup (typer's default mode, kept for styled help everywhere):
    # a literal square bracket is escaped, or "[schema]" would vanish as an unknown tag.
    r"""Print a \[schema] block for a federation file, inferred from a data file."""
    schema = infer_schema(file, id_column=id_column, label_column=label_column)
    typer.echo("[schema]")
    typer.echo(f'id = "{schema.id}"')
    if schema.label:
        typer.echo(f'label = "{schema.label}"')
    typer.echo("features = [")
    for f in schema.features:
        bounds = "".join(
            f", {k} = {v!r}" for k, v in (("min", f.min), ("max", f.max)) if v is not None
        )
        typer.echo(f'  {{ name = "{f.name}", type = "{f.type}"{bounds} }},')
    typer.echo("]")
