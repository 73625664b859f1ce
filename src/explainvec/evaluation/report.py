"""The evaluation report: one row per method, written as ``report.json``, ``report.md`` and a
self-contained ``report.html`` (figures embedded)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import NamedTuple

import jinja2
from pydantic import BaseModel, Field

from explainvec.evaluation.metrics import METRICS
from explainvec.io import atomic_write, write_json

LOWER_IS_BETTER = {name for name, metric in METRICS.items() if not metric.higher_is_better} | {
    "forward_passes",
    "ms_per_image",
    "evaluation_seconds",
    "evaluations_per_image",
}


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("explainvec.evaluation", "templates"),
    autoescape=True,
    keep_trailing_newline=True,
)
"""The report's HTML templates, shipped in the package (autoescaped)."""


class Cell(NamedTuple):
    """A table cell's text, and whether it is its column's best."""

    text: str
    best: bool = False


class ReportRow(BaseModel):
    """One method's numbers; ``None`` where a metric was not measured. ``metrics`` holds every metric of
    the suite as ``{"mean", "low", "high"}`` (95 % bootstrap interval over images)."""

    method: str
    accuracy: float | None = None
    agreement: float | None = None
    insertion_auc: float | None = None
    deletion_auc: float | None = None
    insertion_minus_deletion: float | None = None
    shapley_pearson: float | None = None
    forward_passes: int | None = None
    ms_per_image: float | None = None
    evaluation_seconds: float | None = None
    """Wall-clock seconds that measuring the row took (its model's reference included where computed)."""
    evaluations_per_image: int | None = None
    """Model evaluations per image that measuring the row took (explanation, metrics, reference as above)."""
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    extra: dict = Field(default_factory=dict)


class Figure(BaseModel):
    """A PNG beside the report (path relative to the report's folder) and its caption."""

    path: str
    caption: str


class Report(BaseModel):
    """A report on one dataset: ``report.json``, ``report.md`` and ``report.html`` share this schema."""

    title: str
    data: str
    preset: str | None = None
    lambda_: float | None = Field(default=None, alias="lambda")
    rows: list[ReportRow] = Field(default_factory=list)
    verdicts: list[str] = Field(default_factory=list)
    """Plain sentences above the table: is the explained model ahead of what a user has for free."""
    notes: list[str] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    details: dict = Field(default_factory=dict)

    model_config = {"populate_by_name": True}

    # -- tables --------------------------------------------------------------------------------------
    def _headline(self) -> tuple[list[str], list[list[Cell]]]:
        columns = [c for c in ReportRow.model_fields if c not in ("method", "metrics", "extra")]
        shown = [c for c in columns if any(getattr(r, c) is not None for r in self.rows)]
        best = {c: _best(c, [getattr(r, c) for r in self.rows]) for c in shown}
        cells = []
        for row in self.rows:
            line = [Cell(row.method)]
            for c in shown:
                value = getattr(row, c)
                text = _cell(value, row.metrics.get(_metric_name(c)))
                line.append(Cell(text, value is not None and value == best[c]))
            cells.append(line)
        return ["method", *shown], cells

    def _detail_table(self) -> tuple[list[str], list[list[Cell]]] | None:
        names = sorted({n for r in self.rows for n in r.metrics})
        if not names:
            return None
        cells = []
        for row in self.rows:
            line = [Cell(row.method)]
            for name in names:
                summary = row.metrics.get(name)
                line.append(
                    Cell(
                        "—"
                        if summary is None
                        else f"{summary['mean']:.3f} [{summary['low']:.3f}, {summary['high']:.3f}]"
                    )
                )
            cells.append(line)
        arrows = [f"{n} {'↓' if n in LOWER_IS_BETTER else '↑'}" for n in names]
        return ["method", *arrows], cells

    def to_markdown(self) -> str:
        """The report as Markdown: headline table (best per column in bold, ± half the 95 % interval),
        notes, figures, and every metric with its interval."""
        lines = [f"# {self.title}", "", f"Data: `{self.data}`", ""]
        if self.preset:
            lines[-1:-1] = [f"Preset: `{self.preset}`  "]
        if self.lambda_ is not None:
            lines[-1:-1] = [f"λ: `{self.lambda_:g}`  "]
        lines += [f"**{v}**  " for v in self.verdicts] + ([""] if self.verdicts else [])
        header, cells = self._headline()
        lines += _markdown_table(header, cells)
        lines += ["", *[f"- {n}" for n in self.notes]]
        for figure in self.figures:
            lines += ["", f"![{figure.caption}]({figure.path})", "", f"*{figure.caption}*"]
        detail = self._detail_table()
        if detail:
            lines += ["", "## Every metric (mean [95 % bootstrap interval])", "", *_markdown_table(*detail)]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self, folder: Path) -> str:
        """The report as one HTML page with the figures embedded (base64), for a browser."""
        figures = [
            (figure.caption, base64.b64encode((folder / figure.path).read_bytes()).decode())
            for figure in self.figures
        ]
        return TEMPLATES.get_template("report.html.j2").render(
            report=self, headline=self._headline(), detail=self._detail_table(), figures=figures
        )

    def write(self, folder: str | Path) -> Path:
        """Write ``report.json``, ``report.md`` and ``report.html`` into ``folder``; returns the JSON path."""
        folder = Path(folder)
        atomic_write(folder / "report.md", lambda tmp: tmp.write_text(self.to_markdown()))
        atomic_write(folder / "report.html", lambda tmp: tmp.write_text(self.to_html(folder)))
        return write_json(folder / "report.json", self.model_dump(mode="json", by_alias=True))


def _metric_name(column: str) -> str:
    return "pearson" if column == "shapley_pearson" else column


def _best(column: str, values: list) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) < 2 or (column == "forward_passes" and len(set(present)) == 1):
        return None
    return min(present) if column in LOWER_IS_BETTER else max(present)


def _cell(value: float | int | None, summary: dict | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if summary is not None:
        return f"{value:.3f} ± {(summary['high'] - summary['low']) / 2:.3f}"
    return f"{value:.3f}"


def _markdown_table(header: list[str], cells: list[list[Cell]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("| " + " | ".join(f"**{c.text}**" if c.best else c.text for c in line) + " |" for line in cells),
    ]
