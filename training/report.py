"""An evaluation report people would rather look at than a table of numbers.

`write_report` fills a folder with `report.html`, one self-contained page (pictures embedded), plus
`confusion_matrix.png` and `per_label.csv`: scores per label, the confusion matrix, the calibration
curve, accuracy against coverage by threshold, and the mistakes the model was surest of, with the
terms behind them. Pictures need matplotlib (`pip install 'qism[report]'`). matplotlib 3.11 and later
lay out Arabic themselves (libraqm); with older ones, arabic-reshaper joins the letters and python-bidi
puts right-to-left text in display order first.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
from pathlib import Path

import numpy as np

from .errors import QismError
from .evaluation import Evaluation
from .scores import reliability
from .card import per_label_rows
from .files import write_atomically
from .output import spreadsheet_cell

#: import name -> package to install, for matplotlib versions that cannot lay out Arabic themselves
SHAPING_PACKAGES = {"arabic_reshaper": "arabic-reshaper", "bidi": "python-bidi"}
#: Has glyphs for Arabic (with presentation forms) and ships with matplotlib.
FONT = "DejaVu Sans"
MISTAKES_SHOWN = 20
EXCERPT_CHARS = 300
TERMS_SHOWN = 8


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _matplotlib_lays_out_arabic() -> bool:
    from matplotlib import ft2font

    return bool(getattr(ft2font, "__libraqm_version__", ""))


def require_picture_packages() -> None:
    """Fail early, with what to install, when the packages for the report's pictures are missing."""
    if not _importable("matplotlib"):
        raise QismError("--report needs matplotlib; install it with: pip install 'qism[report]'")
    missing = [package for module, package in SHAPING_PACKAGES.items() if not _importable(module)]
    if missing and not _matplotlib_lays_out_arabic():
        raise QismError(f"--report needs {' and '.join(missing)} to draw Arabic with this matplotlib; "
                        "install with: pip install 'qism[report]'")


def _shaped(text: str) -> str:
    """Text as matplotlib must be given it: as is when it lays out Arabic itself, else with the
    letters joined and in display (left-to-right) order."""
    if _matplotlib_lays_out_arabic():
        return text
    from arabic_reshaper import reshape
    from bidi.algorithm import get_display

    return get_display(reshape(text))


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


# --- pictures ---------------------------------------------------------------------------------

def confusion_matrix_png(matrix: np.ndarray, names: list[str]) -> bytes:
    """Rows true, columns predicted; colour is the share of the row, the number is the count."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        n = len(names)
        figure, axes = _figure(2.5 + 0.75 * n, 2 + 0.65 * n)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label")
        labels = [_shaped(name) for name in names]
        axes.set_xticks(range(n), labels, rotation=40, ha="right", rotation_mode="anchor")
        axes.set_yticks(range(n), labels)
        axes.set_xlabel("predicted label")
        axes.set_ylabel("true label")
        size = max(6, 11 - n // 3)
        for (i, j), count in np.ndenumerate(matrix):
            axes.text(j, i, f"{count:,}", ha="center", va="center", fontsize=size,
                      color="white" if shares[i, j] > 0.5 else "black")
        axes.set_title("Confusion matrix")
        return _png(figure)


def calibration_png(bins: list[dict], ece: float) -> bytes:
    """Accuracy against confidence per confidence bin; calibrated scores lie on the diagonal."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        figure, axes = _figure(5, 4.5)
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        confidence = [b["confidence"] for b in bins]
        accuracy = [b["accuracy"] for b in bins]
        sizes = [20 + 200 * b["documents"] / max(1, sum(x["documents"] for x in bins)) for b in bins]
        axes.plot(confidence, accuracy, color="tab:blue")
        axes.scatter(confidence, accuracy, s=sizes, color="tab:blue", label="model (dot size: documents)")
        axes.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="confidence (best probability)", ylabel="accuracy",
                 title=f"Calibration (ECE {ece:.3f})")
        axes.legend(loc="lower right")
        return _png(figure)


def coverage_png(confidence: np.ndarray, correct: np.ndarray, rows: list[dict]) -> bytes:
    """Accuracy on the documents kept against the share kept, as the threshold rises."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        figure, axes = _figure(5, 4.5)
        order = np.argsort(-confidence, kind="stable")
        kept = np.arange(1, len(order) + 1)
        axes.plot(kept / len(order), np.cumsum(correct[order]) / kept, color="tab:green")
        for row in rows:
            axes.scatter(row["coverage"], row["accuracy"], color="tab:green")
            axes.annotate(f"≥{row['threshold']:.2f}", (row["coverage"], row["accuracy"]),
                          textcoords="offset points", xytext=(4, 4), fontsize=8)
        axes.set(xlim=(0, 1.02), xlabel="coverage (share of documents labeled)", ylabel="accuracy on them",
                 title="Accuracy against coverage by threshold")
        axes.invert_xaxis()
        return _png(figure)


# --- the page ---------------------------------------------------------------------------------

STYLE = """
body { font-family: "DejaVu Sans", "Noto Sans Arabic", Arial, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.pictures img { max-width: 100%; margin: 0.5em 1em 0.5em 0; }
.excerpt { max-width: 36em; }
"""


def _cell(value, number: bool = False, rtl: bool = False, ltr: bool = False) -> str:
    """A table cell; Arabic text runs right to left, labels take the direction of their script."""
    attributes = (' class="number"' if number else ' dir="rtl" lang="ar"' if rtl else ' dir="ltr"' if ltr
                  else ' dir="auto"')
    return f"<td{attributes}>{html.escape(str(value))}</td>"


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(f'<tr>{row}</tr>' for row in rows)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _mistakes(model, evaluation: Evaluation, names: list[str]) -> list[dict]:
    """The wrong predictions the model was surest of, with the terms that drove them."""
    confidence = evaluation.proba.max(axis=1)
    predicted = evaluation.proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != evaluation.y_index)
    chosen = wrong[np.argsort(-confidence[wrong], kind="stable")][:MISTAKES_SHOWN]
    _, terms = model.explain([evaluation.documents[i].text for i in chosen], TERMS_SHOWN)
    return [
        {"id": evaluation.documents[i].id or str(i + 1), "true": names[evaluation.y_index[i]],
         "predicted": names[predicted[i]], "confidence": float(confidence[i]),
         "excerpt": " ".join(evaluation.documents[i].text.split())[:EXCERPT_CHARS], "terms": found}
        for i, found in zip(chosen, terms)
    ]


def _page(title: str, evaluation: Evaluation, names: list[str], pictures: dict[str, bytes], mistakes: list[dict]) -> str:
    scores = evaluation.scores
    headline = _table(["documents", "accuracy", "macro-F1", "expected calibration error"], [
        _cell(f"{scores['documents']:,}", True) + _cell(f"{scores['accuracy']:.1%}", True)
        + _cell(f"{scores['macro_f1']:.1%}", True) + _cell(f"{scores['expected_calibration_error']:.3f}", True)
    ])
    per_label = _table(["label", "precision", "recall", "F1", "support"], [
        _cell(name) + "".join(_cell(f"{value:.1%}", True) for value in (precision, recall, f1)) + _cell(f"{support:,}", True)
        for name, (_, precision, recall, f1, support) in zip(names, per_label_rows(scores))
    ])
    thresholds = _table(["threshold (--threshold)", "coverage", "accuracy"], [
        _cell(f"{row['threshold']:.3f}", True) + _cell(f"{row['coverage']:.1%}", True) + _cell(f"{row['accuracy']:.1%}", True)
        for row in scores["by_threshold"]
    ])
    mistake_rows = "<p>None.</p>" if not mistakes else _table(["id", "true label", "predicted", "confidence", "excerpt", "top terms"], [
        _cell(m["id"], ltr=True) + _cell(m["true"]) + _cell(m["predicted"]) + _cell(f"{m['confidence']:.2f}", True)
        + _cell(m["excerpt"] + "…", rtl=True) + _cell("، ".join(f"{t['term']} ({t['weight']:.2f})" for t in m["terms"]), rtl=True)
        for m in mistakes
    ])
    unknown = scores.get("labels_unknown_to_model") or []
    note = f"<p>Labels the model does not know (always wrong): {html.escape(', '.join(unknown))}</p>" if unknown else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{headline}{note}
<h2>Scores per label</h2>
{per_label}
<div class="pictures">{_image(pictures["confusion"], "confusion matrix")}</div>
<h2>Calibration and coverage</h2>
<p>Scores are calibrated probabilities: among articles scored 0.8, about 80% should be right. With
<code>qism predict --threshold P</code>, an article whose best score is below P is labeled unknown and can go
to a person; the table shows how many articles keep a label at each threshold and how often it is right.</p>
<div class="pictures">{_image(pictures["calibration"], "calibration curve")}{_image(pictures["coverage"], "accuracy against coverage")}</div>
{thresholds}
<h2>Most confident mistakes</h2>
<p>The wrong labels the model was surest of, with the terms that pushed it towards them (weight: what the
term adds to the label's log-odds).</p>
{mistake_rows}
</body>
</html>
"""


def _per_label_csv(evaluation: Evaluation, names: list[str]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["label", "name", "precision", "recall", "f1", "support"])
    for (label, precision, recall, f1, support), name in zip(per_label_rows(evaluation.scores), names):
        writer.writerow([spreadsheet_cell(label), spreadsheet_cell(name), f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}", support])
    return buffer.getvalue().encode("utf-8-sig")  # with a BOM, so spreadsheets read it as UTF-8


def write_report(directory: str | os.PathLike, model, evaluation: Evaluation, title: str = "qism evaluation") -> Path:
    """Write `report.html`, `confusion_matrix.png` and `per_label.csv` into `directory`; each file
    appears whole or not at all. Returns the path of the page."""
    require_picture_packages()
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise QismError(f"{directory}: exists and is not a folder")
    names = [model.label_names.get(label, label) for label in evaluation.labels]
    scores = evaluation.scores
    confidence = evaluation.proba.max(axis=1)
    correct = evaluation.proba.argmax(axis=1) == evaluation.y_index
    pictures = {
        "confusion": confusion_matrix_png(np.asarray(scores["confusion_matrix"]["rows_true_columns_predicted"]), names),
        "calibration": calibration_png(reliability(evaluation.proba, evaluation.y_index), scores["expected_calibration_error"]),
        "coverage": coverage_png(confidence, correct, scores["by_threshold"]),
    }
    page = _page(title, evaluation, names, pictures, _mistakes(model, evaluation, names))
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "confusion_matrix.png", pictures["confusion"])
    write_atomically(directory / "per_label.csv", _per_label_csv(evaluation, names))
    write_atomically(directory / "report.html", page.encode("utf-8"))
    return directory / "report.html"
