"""The evaluation report: one row per method, written as JSON and Markdown."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from explainvec.io import atomic_write, write_json


class ReportRow(BaseModel):
    """One method's numbers; ``None`` where a metric was not measured."""

    method: str
    accuracy: float | None = None
    agreement: float | None = None
    insertion_auc: float | None = None
    deletion_auc: float | None = None
    shapley_pearson: float | None = None
    forward_passes: int | None = None
    extra: dict = Field(default_factory=dict)


class Report(BaseModel):
    """A report on one dataset: ``report.json`` and ``report.md`` share this schema."""

    title: str
    data: str
    preset: str | None = None
    lambda_: float | None = Field(default=None, alias="lambda")
    rows: list[ReportRow] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}

    def to_markdown(self) -> str:
        """The report as a Markdown table with its notes."""
        columns = [c for c in ReportRow.model_fields if c not in ("method", "extra")]
        shown = [c for c in columns if any(getattr(r, c) is not None for r in self.rows)]
        lines = [f"# {self.title}", "", f"Data: `{self.data}`", ""]
        if self.preset:
            lines[-1:-1] = [f"Preset: `{self.preset}`  "]
        lines += ["| method | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
        for row in self.rows:
            cells = [_cell(getattr(row, c)) for c in shown]
            lines.append(f"| {row.method} | " + " | ".join(cells) + " |")
        lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines).rstrip() + "\n"

    def write(self, folder: str | Path) -> Path:
        """Write ``report.json`` and ``report.md`` into ``folder``; returns the JSON path."""
        folder = Path(folder)
        atomic_write(folder / "report.md", lambda tmp: tmp.write_text(self.to_markdown()))
        return write_json(folder / "report.json", self.model_dump(mode="json", by_alias=True))


def _cell(value: float | int | None) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
