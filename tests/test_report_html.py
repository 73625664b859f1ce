"""The HTML report renders in a real browser: headless Chromium (Debian's ``chromium`` package)."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from explainvec.evaluation.figures import plot_lambda_curve
from explainvec.evaluation.report import Figure, Report, ReportRow

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(BROWSER is None, reason="needs headless Chromium (apt install chromium)")
def test_report_html_renders_table_and_embedded_figure(tmp_path):
    curve = [
        {"lam": lam, "agreement": 1 - lam / 4, "insertion": 0.8, "deletion": 0.3 - lam / 10}
        for lam in (0, 1, 2)
    ]
    plot_lambda_curve(curve, 1.0, tmp_path / "lambda_curve.png")
    rows = [
        ReportRow(method="model", accuracy=0.9, shapley_pearson=0.8, forward_passes=1),
        ReportRow(method="kernelshap150", accuracy=0.9, shapley_pearson=0.95, forward_passes=150),
    ]
    report = Report(
        title="t", data="synthetic:geo", rows=rows, figures=[Figure(path="lambda_curve.png", caption="λ")]
    )
    report.write(tmp_path)
    page = f"file://{tmp_path / 'report.html'}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run([BROWSER, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert "<td>kernelshap150</td>" in dom.stdout and "<b>0.950</b>" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [BROWSER, *flags, f"--screenshot={shot}", "--window-size=900,1200", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    blue = np.abs(pixels - [31, 119, 180]).sum(1) < 40  # matplotlib's first line colour: the figure rendered
    assert blue.sum() > 50


def test_report_html_escapes_text_and_marks_the_best_cells(tmp_path):
    plot_lambda_curve(
        [{"lam": 0, "agreement": 1, "insertion": 0.8, "deletion": 0.3}], 0.0, tmp_path / "l.png"
    )
    rows = [
        ReportRow(
            method="<model>", shapley_pearson=0.8, metrics={"pearson": {"mean": 0.8, "low": 0.7, "high": 0.9}}
        ),
        ReportRow(method="kernelshap150", shapley_pearson=0.95),
    ]
    report = Report(
        title="a & b", data="synthetic:geo", lambda_=0.5, rows=rows, notes=["x < y"],
        figures=[Figure(path="l.png", caption="λ")],
    )  # fmt: skip
    page = report.to_html(tmp_path)
    assert "<h1>a &amp; b</h1>" in page and "<li>x &lt; y</li>" in page and "λ = 0.5" in page
    assert "<td>&lt;model&gt;</td><td>0.800 ± 0.100</td>" in page and "<td><b>0.950</b></td>" in page
    assert page.count('<img alt="λ" src="data:image/png;base64,') == 1
    assert "<h2>Every metric (mean [95 % bootstrap interval])</h2>" in page
    assert "| kernelshap150 | **0.950** |" in report.to_markdown()
