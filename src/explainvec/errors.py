"""The project's error types: input explainvec refuses, each with a one-line message naming the file,
folder, option or field. All are ``ValueError``s; the command line shows them as ``error: …``, exit 2."""

from __future__ import annotations


class ExplainvecError(ValueError):
    """Something explainvec refuses to read or to do; the message is one line naming what is wrong."""


class FileFormatError(ExplainvecError):
    """A checkpoint, vector or weights file (or its sidecar) that is not what it should be."""


class OutputError(ExplainvecError):
    """An output that would replace an input or an existing result, that cannot be written, or whose
    values are not finite."""
