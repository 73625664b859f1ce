"""Entry point of the ``explainvec`` command: every command module registers itself on the app."""

from explainvec.cli import demo, domains, evaluate, explain, labels, pretrain, train, vector  # noqa: F401  (registers commands)
from explainvec.cli.app import app

__all__ = ["app"]
