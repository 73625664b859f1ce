"""``explainvec domains``: what the embedded synthetic domains hold."""

from __future__ import annotations

from rich.table import Table

from explainvec.cli.app import app, console
from explainvec.data.domains import DOMAINS


@app.command("domains")
def domains_command() -> None:
    """List the embedded synthetic domains (use them as --data synthetic:<name>)."""
    table = Table("name", "classes", "styles", "description")
    for d in DOMAINS.values():
        table.add_row(d.name, ", ".join(d.classes), ", ".join(d.styles), d.description)
    console.print(table)
