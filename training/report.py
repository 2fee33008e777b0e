"""An evaluation report an editor would rather read than a table of numbers, in English or Arabic.

`write_report` fills a folder with `report.html`, one self-contained page (pictures embedded), plus
`confusion_matrix.png`, `per_label.csv` and `mistakes.csv`. The page says which model it is (name,
training data, date, settings, the card's held-out scores beside this evaluation's), then scores
and predicted against actual counts per label, scores per outlet, the confusion matrix, calibration,
accuracy against coverage by threshold, and the mistakes the model was surest of with the terms
behind them. `lang="ar"` writes it right to left with Arabic headings and the labels' display names;
every string of the page and its pictures is in `STRINGS`, one table per language.

Pictures need matplotlib (`pip install 'qism[report]'`). matplotlib 3.11 and later lay out Arabic
themselves (libraqm); with older ones, arabic-reshaper joins the letters and python-bidi puts
right-to-left text in display order first.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .card import headline_scores, per_label_rows
from .config import check_report_language
from .errors import QismError, printable
from .evaluation import Evaluation
from .files import write_atomically
from .output import spreadsheet_cell
from .scores import reliability

#: import name -> package to install, for matplotlib versions that cannot lay out Arabic themselves
SHAPING_PACKAGES = {"arabic_reshaper": "arabic-reshaper", "bidi": "python-bidi"}
#: Has glyphs for Arabic (with presentation forms) and ships with matplotlib.
FONT = "DejaVu Sans"
MISTAKES_SHOWN = 20
#: Ids shown of a mistaken text found several times (mistakes.csv lists them all).
IDS_SHOWN = 3
EXCERPT_CHARS = 300
TERMS_SHOWN = 8
#: The training settings the page shows, in this order (the card keeps them all).
SETTINGS_SHOWN = (
    "classifier",
    "C",
    "class_weight",
    "word_ngrams",
    "char_ngrams",
    "min_df",
    "max_features",
    "nb_scaling",
    "lead_words",
    "balance_outlets",
    "test_size",
    "seed",
)
#: Annotations of the coverage plot closer than this (share of the axes across, up) to one already
#: drawn are left out: on small sets several thresholds land on nearly the same point.
LABEL_SPACING = (0.13, 0.06)
# --- the strings of the page, one table per language ------------------------------------------
# Values are HTML written here; what comes from data is escaped before it is put in their {slots}.

STRINGS = {
    "en": {
        "lang": "en",
        "dir": "ltr",
        "comma": ", ",
        "font": '"Segoe UI", "Noto Sans", "DejaVu Sans", Arial, "Noto Sans Arabic", Tahoma, sans-serif',
        "title": "Evaluation of the model {model}",
        "subtitle": "on {sources}: {documents} articles",
        "model": "The model",
        "created": "Trained {date} with {version}; {train} training articles, {test} held out to score it.",
        "source": "training source",
        "documents": "articles",
        "settings": "Settings",
        "scores": "Scores",
        "this_evaluation": "this evaluation",
        "held_out": "held out at training (the model card)",
        "no_held_out": "The model was trained on all its data: its card has no held-out scores.",
        "accuracy": "accuracy",
        "macro_f1": "macro-F1",
        "ece": "calibration error (ECE)",
        "unknown_labels": "Labels the model does not know (always wrong): {labels}",
        "per_label": "Scores and counts per label",
        "per_label_note": (
            "Actual: the articles of each label in the data; predicted: the articles the model gave "
            "that label; the difference is predicted minus actual."
        ),
        "label": "label",
        "name": "name",
        "precision": "precision",
        "recall": "recall",
        "f1": "F1",
        "actual": "actual",
        "predicted_count": "predicted",
        "difference": "difference",
        "outlets": "Scores per outlet",
        "outlets_note": "A model that learned an outlet's style rather than the topic does well on one "
        "outlet and badly on another.",
        "outlet": "outlet",
        "calibration": "Calibration and coverage",
        "calibration_note": (
            'Scores are calibrated probabilities: among articles scored <bdi dir="ltr">0.8</bdi>, '
            'about <bdi dir="ltr">80%</bdi> should be right. '
            "With <code>qism predict --threshold P</code>, an article whose best score is below P is "
            "labeled unknown and can go to a person; the table shows how many articles keep a label "
            "at each threshold and how often it is right."
        ),
        "threshold": 'threshold (<bdi dir="ltr">--threshold</bdi>)',
        "coverage": "coverage",
        "mistakes": "Most confident mistakes",
        "mistakes_note": (
            "The wrong labels the model was surest of, each text once, with the terms that pushed it "
            "towards them (weight: what the term adds to the label's log-odds). Showing {shown} of "
            "{total}; all are in {file}."
        ),
        "no_mistakes": "None.",
        "id": "id",
        "true": "true label",
        "predicted": "predicted",
        "confidence": "score",
        "excerpt": "excerpt and terms",
        "cm_title": "Confusion matrix",
        "cm_x": "predicted label",
        "cm_y": "true label",
        "cm_bar": "share of the true label",
        "cal_title": "Calibration (ECE {ece})",
        "cal_perfect": "perfect calibration",
        "cal_model": "model (dot size: articles)",
        "cal_x": "score (best probability)",
        "cal_y": "accuracy",
        "cov_title": "Accuracy against coverage by threshold",
        "cov_x": "coverage (share of articles labeled)",
        "cov_y": "accuracy on them",
        "co_title": "Sections filed together (true labels)",
        "co_predicted_title": "Sections given together (the model)",
        "co_axis": "section",
        "co_bar": "share of the row's section",
    },
    "ar": {
        "lang": "ar",
        "dir": "rtl",
        "comma": "، ",
        "font": '"Noto Naskh Arabic", "Noto Sans Arabic", "Segoe UI", Tahoma, "DejaVu Sans", Arial, sans-serif',
        "title": "تقييم النموذج {model}",
        "subtitle": "على {sources}: {documents} مقالة",
        "model": "النموذج",
        "created": "دُرِّب في {date} بإصدار {version}؛ {train} مقالة للتدريب، و{test} مقالة حُجبت عنه لقياس أدائه.",
        "source": "مصدر التدريب",
        "documents": "المقالات",
        "settings": "الإعدادات",
        "scores": "النتائج",
        "this_evaluation": "هذا التقييم",
        "held_out": "المقالات المحجوبة عند التدريب (بطاقة النموذج)",
        "no_held_out": "دُرِّب النموذج على كل بياناته، فليس في بطاقته نتائج على مقالات محجوبة.",
        "accuracy": "نسبة الصواب",
        "macro_f1": "متوسط F1 للأقسام",
        "ece": "خطأ المعايرة (ECE)",
        "unknown_labels": "أقسام لا يعرفها النموذج (خاطئة دائمًا): {labels}",
        "per_label": "النتائج والأعداد حسب القسم",
        "per_label_note": (
            "الفعلي: عدد مقالات القسم في البيانات؛ المتوقع: عدد المقالات التي وضعها النموذج فيه؛ "
            "والفرق هو المتوقع ناقص الفعلي."
        ),
        "label": "القسم",
        "name": "الاسم",
        "precision": "الدقة",
        "recall": "الاستدعاء",
        "f1": "F1",
        "actual": "الفعلي",
        "predicted_count": "المتوقع",
        "difference": "الفرق",
        "outlets": "النتائج حسب الوسيلة الإعلامية",
        "outlets_note": "النموذج الذي تعلّم أسلوب وسيلة ما بدل الموضوع ينجح مع وسيلة ويخفق مع أخرى.",
        "outlet": "الوسيلة",
        "calibration": "المعايرة والتغطية",
        "calibration_note": (
            'الدرجات احتمالات معايَرة: من بين المقالات التي درجتها <bdi dir="ltr">0.8</bdi> ينبغي أن يصحّ '
            'تصنيف نحو <bdi dir="ltr">80%</bdi> منها. '
            'مع <code dir="ltr">qism predict --threshold P</code> تُوسم المقالة التي تقل أعلى درجاتها '
            "عن P بأنها غير معروفة ويمكن أن يراجعها محرر؛ ويبيّن الجدول كم مقالة تحتفظ بقسمها عند كل عتبة "
            "وكم مرة يصحّ تصنيفها."
        ),
        "threshold": 'العتبة (<bdi dir="ltr">--threshold</bdi>)',
        "coverage": "التغطية",
        "mistakes": "الأخطاء التي كان النموذج أكثر ثقة بها",
        "mistakes_note": (
            "التصنيفات الخاطئة التي كان النموذج أكثر ثقة بها، وكل نص مرة واحدة، مع الكلمات التي دفعته إليها "
            "(الوزن: ما تضيفه الكلمة إلى لوغاريتم أرجحية القسم). المعروض {shown} من {total}؛ وكلها في {file}."
        ),
        "no_mistakes": "لا أخطاء.",
        "id": "المعرّف",
        "true": "القسم الصحيح",
        "predicted": "القسم المتوقع",
        "confidence": "الدرجة",
        "excerpt": "مقتطف وكلمات مؤثرة",
        "cm_title": "مصفوفة الالتباس",
        "cm_x": "القسم المتوقع",
        "cm_y": "القسم الصحيح",
        "cm_bar": "النسبة من القسم الصحيح",
        "cal_title": "المعايرة (ECE {ece})",
        "cal_perfect": "معايرة مثالية",
        "cal_model": "النموذج (حجم النقطة: عدد المقالات)",
        "cal_x": "الدرجة (أعلى احتمال)",
        "cal_y": "نسبة الصواب",
        "cov_title": "نسبة الصواب مقابل التغطية حسب العتبة",
        "cov_x": "التغطية (حصة المقالات الموسومة)",
        "cov_y": "نسبة الصواب فيها",
        "co_title": "الأقسام التي تُنشر معًا (الأقسام الصحيحة)",
        "co_predicted_title": "الأقسام التي يعطيها النموذج معًا",
        "co_axis": "القسم",
        "co_bar": "النسبة من قسم الصف",
    },
}


def strings_for(lang: str) -> dict[str, str]:
    """The page's strings in `lang`, one of `config.REPORT_LANGUAGES`."""
    return STRINGS[check_report_language(lang)]


# --- packages for the pictures ----------------------------------------------------------------


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
        raise QismError(
            f"--report needs {' and '.join(missing)} to draw Arabic with this matplotlib; "
            "install with: pip install 'qism[report]'"
        )


def _shaped(text: str) -> str:
    """Text as matplotlib must be given it: as is when it lays out Arabic itself, else with the
    letters joined and in display (left-to-right) order."""
    if _matplotlib_lays_out_arabic():
        return text
    from arabic_reshaper import reshape
    from bidi.algorithm import get_display

    return get_display(reshape(text))


# --- pictures ---------------------------------------------------------------------------------


#: Most characters of a label drawn in a picture: the picture grows with its longest label (one of
#: 5,000 characters took 4.3 GB and three minutes to draw); the page and the CSV files keep it whole.
MAX_DRAWN_LABEL = 40


def drawn_label(name: str) -> str:
    """A label as a picture shows it: control characters escaped (`printable`), cut to
    MAX_DRAWN_LABEL characters with an ellipsis."""
    shown = printable(name)
    return shown if len(shown) <= MAX_DRAWN_LABEL else shown[: MAX_DRAWN_LABEL - 1] + "…"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def confusion_matrix_png(matrix: np.ndarray, names: list[str], t: dict[str, str]) -> bytes:
    """Rows true, columns predicted; colour is the share of the row, the number is the count."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        n = len(names)
        figure, axes = _figure(2.5 + 0.75 * n, 2 + 0.65 * n)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=_shaped(t["cm_bar"]))
        labels = [_shaped(drawn_label(name)) for name in names]
        # parse_math off: a label's `$...$` is text, never mathtext (which one label drove to RecursionError)
        axes.set_xticks(range(n), labels, rotation=40, ha="right", rotation_mode="anchor", parse_math=False)
        axes.set_yticks(range(n), labels, parse_math=False)
        axes.set_xlabel(_shaped(t["cm_x"]))
        axes.set_ylabel(_shaped(t["cm_y"]))
        size = max(6, 11 - n // 3)
        for (i, j), count in np.ndenumerate(matrix):
            axes.text(
                j,
                i,
                f"{count:,}",
                ha="center",
                va="center",
                fontsize=size,
                color="white" if shares[i, j] > 0.5 else "black",
            )
        axes.set_title(_shaped(t["cm_title"]))
        return _png(figure)


def calibration_png(bins: list[dict], ece: float, t: dict[str, str]) -> bytes:
    """Accuracy against confidence per confidence bin; calibrated scores lie on the diagonal."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        figure, axes = _figure(5, 4.5)
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label=_shaped(t["cal_perfect"]))
        confidence = [b["confidence"] for b in bins]
        accuracy = [b["accuracy"] for b in bins]
        sizes = [20 + 200 * b["documents"] / max(1, sum(x["documents"] for x in bins)) for b in bins]
        axes.plot(confidence, accuracy, color="tab:blue")
        axes.scatter(confidence, accuracy, s=sizes, color="tab:blue", label=_shaped(t["cal_model"]))
        axes.set(
            xlim=(-0.02, 1.02),
            ylim=(-0.02, 1.02),
            xlabel=_shaped(t["cal_x"]),
            ylabel=_shaped(t["cal_y"]),
            title=_shaped(t["cal_title"].format(ece=f"{ece:.3f}")),
        )
        axes.legend(loc="lower right")
        return _png(figure)


def spaced_out(points: list[tuple[float, float]], spacing: tuple[float, float] = LABEL_SPACING) -> list[bool]:
    """Which of `points` (in axes fractions) to label: each one not within `spacing` of one labeled before."""
    labeled: list[tuple[float, float]] = []
    shown = []
    for x, y in points:
        shown.append(all(abs(x - a) >= spacing[0] or abs(y - b) >= spacing[1] for a, b in labeled))
        if shown[-1]:
            labeled.append((x, y))
    return shown


def coverage_png(confidence: np.ndarray, correct: np.ndarray, rows: list[dict], t: dict[str, str]) -> bytes:
    """Accuracy on the documents kept against the share kept, as the threshold rises; `rows` are
    the distinct thresholds of the table, labeled where there is room."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT}):
        figure, axes = _figure(5, 4.5)
        order = np.argsort(-confidence, kind="stable")
        kept = np.arange(1, len(order) + 1)
        axes.plot(kept / len(order), np.cumsum(correct[order]) / kept, color="tab:green")
        points = [(row["coverage"], row["accuracy"]) for row in rows]
        axes.scatter([x for x, _ in points], [y for _, y in points], color="tab:green")
        axes.set(xlim=(0, 1.02), xlabel=_shaped(t["cov_x"]), ylabel=_shaped(t["cov_y"]), title=_shaped(t["cov_title"]))
        axes.invert_xaxis()
        to_axes = axes.transData + axes.transAxes.inverted()
        for row, point, shown in zip(rows, points, spaced_out([tuple(to_axes.transform(p)) for p in points])):
            if shown:
                axes.annotate(f"≥{row['threshold']:.2f}", point, textcoords="offset points", xytext=(4, 4), fontsize=8)
        return _png(figure)


# --- the figures the page shows ---------------------------------------------------------------


def distinct_thresholds(rows: list[dict]) -> list[dict]:
    """The threshold rows with each threshold once: on a small set several coverages give the same one."""
    first: dict[float, dict] = {}
    for row in rows:
        first.setdefault(row["threshold"], row)
    return list(first.values())


def predicted_counts(scores: dict) -> list[int]:
    """How many documents the model gave each label, in the order of the scores' labels."""
    if scores.get("multi_label"):
        return [row["predicted"] for row in scores["per_label"].values()]
    return np.asarray(scores["confusion_matrix"]["rows_true_columns_predicted"]).sum(axis=0).tolist()


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS] + "…"


def mistakes(model, evaluation: Evaluation, names: list[str]) -> list[dict]:
    """Every wrong prediction, surest first, each text once (a text found under two true labels
    lists both), with the terms that drove it."""
    confidence = evaluation.proba.max(axis=1)
    predicted = evaluation.proba.argmax(axis=1)
    if evaluation.is_multi_label:  # a wrong set of sections: the true ones and the chosen ones differ
        wrong = np.flatnonzero((evaluation.truth != evaluation.chosen).any(axis=1))
        chosen = [", ".join(names[j] for j in np.flatnonzero(row)) for row in evaluation.chosen]
        gold = [[names[j] for j in np.flatnonzero(row)] for row in evaluation.truth]
    else:
        wrong = np.flatnonzero(predicted != evaluation.y_index)
        chosen = [names[j] for j in predicted]
        gold = [[names[j]] for j in evaluation.y_index]
    groups: dict[str, dict] = {}
    for i in wrong[np.argsort(-confidence[wrong], kind="stable")]:
        document = evaluation.documents[i]
        group = groups.setdefault(
            " ".join(document.text.split()),
            {"ids": [], "true": [], "predicted": chosen[i], "confidence": float(confidence[i]), "text": document.text},
        )
        group["ids"].append(document.id or str(i + 1))
        group["true"] += [label for label in gold[i] if label not in group["true"]]
    _, terms = model.explain([group["text"] for group in groups.values()], TERMS_SHOWN) if groups else (None, [])
    return [
        {**group, "excerpt": _excerpt(flat), "terms": its_terms}
        for (flat, group), its_terms in zip(groups.items(), terms)
    ]


# --- the page ---------------------------------------------------------------------------------

STYLE = """
body { font-family: %(font)s; margin: 2em auto; padding: 0 1em; max-width: 72em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } .subtitle { margin-top: 0; color: #555; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: start; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pictures img { max-width: 100%%; margin: 0.5em 0; vertical-align: top; }
.chips { display: flex; flex-wrap: wrap; gap: 0.25em 0.35em; margin: 0.3em 0 0; padding: 0; list-style: none; }
.chip { background: #eef3f8; border-radius: 0.8em; padding: 0 0.55em; white-space: nowrap; font-size: 0.85em; }
.chip .weight { color: #667; margin-inline-start: 0.3em; }
table.mistakes { width: 100%%; table-layout: fixed; font-size: 0.92em; }
table.mistakes .id { width: 12em; overflow-wrap: anywhere; font-size: 0.85em; }
table.mistakes .label { width: 7.5em; } table.mistakes .score { width: 4em; }
/* the chips that fit one line; mistakes.csv has all */
table.mistakes .chips { row-gap: 1em; max-height: 1.3em; overflow: hidden; }
.excerpt { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; line-clamp: 2; overflow: hidden; }
"""


@dataclass
class _Report:
    """What the page is drawn from."""

    t: dict[str, str]
    model: object
    model_name: str
    sources: list[str]
    evaluation: Evaluation
    names: list[str]
    pictures: dict[str, bytes]
    mistakes: list[dict]


def _ltr(text) -> str:
    """Numbers, paths and settings keep their left-to-right order inside right-to-left text."""
    return f'<bdi dir="ltr">{html.escape(str(text))}</bdi>'


def _auto(text) -> str:
    """Text from the data (names, outlets): its own direction, isolated from what surrounds it."""
    return f"<bdi>{html.escape(str(text))}</bdi>"


def _number(text) -> str:
    return f'<td class="number">{_ltr(text)}</td>'


def _cell(inner: str, cls: str = "") -> str:
    return f'<td class="{cls}">{inner}</td>' if cls else f"<td>{inner}</td>"


def _table(header: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{name}</th>" for name in header)
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    opening = f'<table class="{cls}">' if cls else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _setting(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _header(r: _Report) -> str:
    title = r.t["title"].format(model=_auto(r.model_name))
    subtitle = r.t["subtitle"].format(
        sources=r.t["comma"].join(map(_ltr, r.sources)), documents=_ltr(f"{len(r.evaluation.documents):,}")
    )
    return f'<h1>{title}</h1><p class="subtitle">{subtitle}</p>'


def _model_section(r: _Report) -> str:
    card, t = r.model.card, r.t
    split = card.get("split", {})
    created = t["created"].format(
        date=_ltr(str(card.get("created", "?")).replace("T", " ").replace("Z", " UTC")),
        version=_ltr("qism " + card.get("versions", {}).get("qism", "?")),
        train=_ltr(f"{split.get('train', 0):,}"),
        test=_ltr(f"{split.get('test', 0):,}"),
    )
    sources = _table(
        [t["source"], t["documents"]],
        [_cell(_ltr(source["path"])) + _number(f"{source['documents']:,}") for source in card.get("sources", [])],
    )
    config = card.get("config", {})
    settings = "".join(
        f'<li class="chip">{_ltr(f"{key} {_setting(config[key])}")}</li>' for key in SETTINGS_SHOWN if key in config
    )
    return f'<h2>{t["model"]}</h2><p>{created}</p>{sources}<p>{t["settings"]}:</p><ul class="chips">{settings}</ul>'


def _scores_row(name: str, scores: dict) -> str:
    ece = scores.get("expected_calibration_error")
    return (
        _cell(name)
        + _number(f"{scores['documents']:,}")
        + _number(_percent(scores["accuracy"]))
        + _number(_percent(scores["macro_f1"]))
        + _number("–" if ece is None else f"{ece:.3f}")
    )


def _multi_label_scores_section(r: _Report) -> str:
    """A multi-label model's scores (see `card.headline_scores`), this evaluation's and the card's."""
    t, scores, card_scores = r.t, r.evaluation.scores, r.model.card.get("scores")
    shown = [scores] + ([card_scores] if card_scores and card_scores.get("multi_label") else [])
    headlines = [headline_scores(each, _percent) for each in shown]
    rows = [
        _cell(name) + "".join(_number(headline[k][1]) for headline in headlines)
        for k, (name, _) in enumerate(headlines[0])
    ]
    columns = [t["this_evaluation"]] + ([t["held_out"]] if len(shown) > 1 else [])
    return f"<h2>{t['scores']}</h2>{_table(['', *columns], rows)}"


def _scores_section(r: _Report) -> str:
    if r.evaluation.is_multi_label:
        return _multi_label_scores_section(r)
    t, scores, card_scores = r.t, r.evaluation.scores, r.model.card.get("scores")
    rows = [_scores_row(t["this_evaluation"], scores)] + (
        [_scores_row(t["held_out"], card_scores)] if card_scores else []
    )
    table = _table(["", t["documents"], t["accuracy"], t["macro_f1"], t["ece"]], rows)
    unknown = scores.get("labels_unknown_to_model") or []
    notes = "" if card_scores else f"<p>{t['no_held_out']}</p>"
    if unknown:
        notes += "<p>" + t["unknown_labels"].format(labels=t["comma"].join(map(_auto, unknown))) + "</p>"
    return f"<h2>{t['scores']}</h2>{table}{notes}"


def _label_row(shown: str, name: str | None, predicted: int, figures: tuple) -> str:
    _, precision, recall, f1, actual = figures
    counts = _number(f"{actual:,}") + _number(f"{predicted:,}") + _number(f"{predicted - actual:+,}")
    # precision of a label never predicted, recall and F1 of one the data lacks: not defined
    shares = "".join(
        _number(_percent(value) if defined else "–")
        for value, defined in ((precision, predicted), (recall, actual), (f1, actual))
    )
    return _cell(_auto(shown)) + ("" if name is None else _cell(_auto(name))) + counts + shares


def _per_label_section(r: _Report) -> str:
    t, scores = r.t, r.evaluation.scores
    display = [r.model.label_names.get(label, label) for label in r.evaluation.labels]
    with_names = display != r.names  # the English page names labels by id: their display names beside them
    header = (
        [t["label"]]
        + ([t["name"]] if with_names else [])
        + [t["actual"], t["predicted_count"], t["difference"], t["precision"], t["recall"], t["f1"]]
    )
    rows = [
        _label_row(shown, name if with_names else None, predicted, figures)
        for shown, name, predicted, figures in zip(r.names, display, predicted_counts(scores), per_label_rows(scores))
    ]
    return f"<h2>{t['per_label']}</h2><p>{t['per_label_note']}</p>{_table(header, rows)}"


def _outlets_section(r: _Report) -> str:
    t, by_outlet = r.t, r.evaluation.scores.get("by_outlet")
    if not by_outlet:
        return ""
    rows = [
        _cell(_auto(outlet))
        + _number(f"{row['documents']:,}")
        + _number(_percent(row["accuracy"]))
        + _number(_percent(row["macro_f1"]))
        for outlet, row in by_outlet.items()
    ]
    table = _table([t["outlet"], t["documents"], t["accuracy"], t["macro_f1"]], rows)
    return f"<h2>{t['outlets']}</h2><p>{t['outlets_note']}</p>{table}"


def _calibration_section(r: _Report) -> str:
    t = r.t
    rows = [
        _number(f"{row['threshold']:.3f}") + _number(_percent(row["coverage"])) + _number(_percent(row["accuracy"]))
        for row in distinct_thresholds(r.evaluation.scores["by_threshold"])
    ]
    pictures = _image(r.pictures["calibration"], t["cal_title"].format(ece="")) + _image(
        r.pictures["coverage"], t["cov_title"]
    )
    return (
        f'<h2>{t["calibration"]}</h2><p>{t["calibration_note"]}</p><div class="pictures">{pictures}</div>'
        f"{_table([t['threshold'], t['coverage'], t['accuracy']], rows)}"
    )


def _chips(terms: list[dict]) -> str:
    return "".join(
        f'<li class="chip">{_auto(term["term"])}<span class="weight">{_ltr(format(term["weight"], ".2f"))}</span></li>'
        for term in terms
    )


def _ids(ids: list[str]) -> str:
    more = [_ltr(f"+{len(ids) - IDS_SHOWN:,}")] if len(ids) > IDS_SHOWN else []
    return "<br>".join([_auto(each) for each in ids[:IDS_SHOWN]] + more)


def _mistakes_section(r: _Report) -> str:
    t, shown = r.t, r.mistakes[:MISTAKES_SHOWN]
    note = t["mistakes_note"].format(
        shown=_ltr(len(shown)),
        total=_ltr(f"{len(r.mistakes):,}"),
        file='<a href="mistakes.csv"><bdi dir="ltr">mistakes.csv</bdi></a>',
    )
    if not shown:
        return f"<h2>{t['mistakes']}</h2><p>{t['no_mistakes']}</p>"
    rows = [
        _cell(_ids(m["ids"]), "id")
        + _cell(t["comma"].join(map(_auto, m["true"])), "label")
        + _cell(_auto(m["predicted"]), "label")
        + _number(f"{m['confidence']:.2f}")
        + _cell(
            f'<div class="excerpt" dir="auto">{html.escape(m["excerpt"])}</div>'
            f'<ul class="chips">{_chips(m["terms"])}</ul>'
        )
        for m in shown
    ]
    header = [t["id"], t["true"], t["predicted"], t["confidence"], t["excerpt"]]
    columns = '<colgroup><col class="id"><col class="label"><col class="label"><col class="score"><col></colgroup>'
    table = _table(header, rows, "mistakes").replace("<thead>", columns + "<thead>", 1)
    return f"<h2>{t['mistakes']}</h2><p>{note}</p>{table}"


def _page(r: _Report) -> str:
    t = r.t
    sections = [_model_section, _scores_section, _per_label_section, _outlets_section]
    body = "".join(section(r) for section in sections)
    shown = [("confusion", t["cm_title"]), ("co_occurrence", t["co_title"]), ("co_predicted", t["co_predicted_title"])]
    confusion = (
        '<div class="pictures">'
        + "".join(_image(r.pictures[key], title) for key, title in shown if key in r.pictures)
        + "</div>"
    )
    calibration = "" if r.evaluation.is_multi_label else _calibration_section(r)
    plain_title = html.escape(t["title"].format(model=r.model_name))
    return f"""<!DOCTYPE html>
<html lang="{t["lang"]}" dir="{t["dir"]}">
<head><meta charset="utf-8"><title>{plain_title}</title><style>{STYLE % {"font": t["font"]}}</style></head>
<body>
{_header(r)}
{body}
{confusion}
{calibration}
{_mistakes_section(r)}
</body>
</html>
"""


# --- files ------------------------------------------------------------------------------------


def _csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[spreadsheet_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue().encode("utf-8-sig")  # with a BOM, so spreadsheets read it as UTF-8


def _per_label_csv(evaluation: Evaluation, names: dict[str, str]) -> bytes:
    return _csv_bytes(
        ["label", "name", "precision", "recall", "f1", "support", "predicted"],
        [
            [label, names.get(label, label), f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}", support, predicted]
            for (label, precision, recall, f1, support), predicted in zip(
                per_label_rows(evaluation.scores), predicted_counts(evaluation.scores)
            )
        ],
    )


def _mistakes_csv(found: list[dict]) -> bytes:
    return _csv_bytes(
        ["id", "true", "predicted", "score", "terms", "excerpt"],
        [
            [
                "; ".join(m["ids"]),
                "; ".join(m["true"]),
                m["predicted"],
                f"{m['confidence']:.4f}",
                "; ".join(f"{term['term']} ({term['weight']:.2f})" for term in m["terms"]),
                m["excerpt"],
            ]
            for m in found
        ],
    )


def report_pictures(evaluation: Evaluation, names: list[str], t: dict[str, str]) -> dict[str, bytes]:
    """The page's pictures: the confusion matrix, and the calibration curve and accuracy against
    coverage; for a multi-label model instead of these two, which sections are filed together, in
    the truth and by the model."""
    scores = evaluation.scores
    pictures = {
        "confusion": confusion_matrix_png(
            np.asarray(scores["confusion_matrix"]["rows_true_columns_predicted"]), names, t
        )
    }
    if evaluation.is_multi_label:
        axes = {**t, "cm_x": t["co_axis"], "cm_y": t["co_axis"], "cm_bar": t["co_bar"]}
        for key, matrix, title in (
            ("co_occurrence", "true", "co_title"),
            ("co_predicted", "predicted", "co_predicted_title"),
        ):
            picture = np.asarray(scores["co_occurrence"][matrix])
            pictures[key] = confusion_matrix_png(picture, names, {**axes, "cm_title": t[title]})
        return pictures
    confidence = evaluation.proba.max(axis=1)
    correct = evaluation.proba.argmax(axis=1) == evaluation.y_index
    pictures["calibration"] = calibration_png(
        reliability(evaluation.proba, evaluation.y_index), scores["expected_calibration_error"], t
    )
    pictures["coverage"] = coverage_png(confidence, correct, distinct_thresholds(scores["by_threshold"]), t)
    return pictures


def write_report(
    directory: str | os.PathLike,
    model,
    evaluation: Evaluation,
    *,
    sources: list[str] = (),
    lang: str = "en",
    model_name: str = "",
) -> Path:
    """Write `report.html`, `confusion_matrix.png`, `per_label.csv` and `mistakes.csv` into
    `directory`, in `lang` (en, ar); each file appears whole or not at all. `sources` are the data
    evaluated on, `model_name` names the model when its card does not. Returns the path of the page."""
    t = strings_for(lang)
    require_picture_packages()
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise QismError(f"{directory}: exists and is not a folder")
    # The Arabic page names labels by their display names; the English one by the labels themselves.
    names = [model.label_names.get(label, label) if lang == "ar" else label for label in evaluation.labels]
    pictures = report_pictures(evaluation, names, t)
    found = mistakes(model, evaluation, names)
    report = _Report(
        t, model, model.card.get("name") or model_name or "qism", list(sources), evaluation, names, pictures, found
    )
    page = _page(report)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "confusion_matrix.png", pictures["confusion"])
    write_atomically(directory / "per_label.csv", _per_label_csv(evaluation, model.label_names))
    write_atomically(directory / "mistakes.csv", _mistakes_csv(found))
    write_atomically(directory / "report.html", page.encode("utf-8"))
    return directory / "report.html"
