"""``python -m explainvec``: the command line (also how data-parallel runs restart themselves per rank)."""

from explainvec.cli.main import app

app()
