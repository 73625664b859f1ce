"""Entry point of the ``explainvec`` command: every command module registers itself on the app."""

from explainvec.cli import (  # noqa: F401  (registers commands)
    demo,
    domains,
    evaluate,
    explain,
    import_base,
    labels,
    pretrain,
    study,
    train,
    vector,
)
from explainvec.cli.app import app

__all__ = ["app"]
