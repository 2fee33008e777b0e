"""Label maps and recipes: which sources, which labels and which options make a model.

A label map renames and merges the labels of several corpora into one taxonomy, each label with an id
and a display name, and drops the labels it does not list; a model keeps its map in its card, so
evaluation maps raw labels as training did. A recipe names the sources, the label map and the
training options, so `qism train --recipe FILE` rebuilds a model the same way every time;
`plan_training` merges a recipe with the options given beside it, key by key.

Label map (TOML, or the same structure in JSON):

    [labels.economy]
    name = "اقتصاد"
    from = ["Finance", "economy"]            # raw labels, in any source
    [labels.security]
    name = "أمن"
    from = ["sm_news_ar_trn.csv:crime-war-conflict"]   # only in the source with this file name
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .card import check_short_input, check_unseen_outlets
from .config import ReadOptions, TrainConfig
from .corpus import Document, replace_lone_surrogates
from .errors import QismError

#: The largest recipe, label map or record of outlets left out that qism reads (settings, not data).
MAX_CONFIG_FILE_BYTES = 4 << 20


def read_config_file(path: str | Path) -> dict:
    """A TOML or JSON file as a dict, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise QismError(f"{path}: no such file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_FILE_BYTES + 1)
        if len(raw) > MAX_CONFIG_FILE_BYTES:
            raise QismError(f"{path}: over {MAX_CONFIG_FILE_BYTES >> 20} MB; a settings file is smaller")
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise QismError(f"{path}: cannot parse ({err})") from None
    if not isinstance(data, dict):
        raise QismError(f"{path}: expected a table of settings")
    return data


def _check_display_names(names: dict[str, str], where: str) -> None:
    """Each label's display name shown, and told apart from the others: a blank name, or one that
    two labels share, is refused when the map is read (and `Model.save` refuses a card holding one)."""
    blank = sorted(label_id for label_id, name in names.items() if not name.strip())
    if blank:
        raise QismError(f"{where}: label {blank[0]!r} has a blank `name`; give it a name or leave `name` out")
    ids_of: dict[str, list[str]] = {}
    for label_id, name in names.items():
        ids_of.setdefault(name, []).append(label_id)
    shared = next(((name, ids) for name, ids in ids_of.items() if len(ids) > 1), None)
    if shared:
        raise QismError(
            f"{where}: labels {shared[1][0]!r} and {shared[1][1]!r} have the same `name` {shared[0]!r}; "
            "give each its own, or map their raw labels onto one label"
        )


@dataclass(frozen=True)
class LabelMap:
    """Raw labels (optionally qualified by source file name) to label ids with display names."""

    names: dict[str, str]
    #: (source file name or "", raw label) -> label id
    targets: dict[tuple[str, str], str]

    @classmethod
    def from_dict(cls, data: dict, where: str = "label map") -> LabelMap:
        labels = data.get("labels", data) if isinstance(data, dict) else None
        if not isinstance(labels, dict) or not labels:
            raise QismError(f"{where}: expected [labels.<id>] tables with `name` and `from`")
        names, targets = {}, {}
        for raw_id, entry in labels.items():
            label_id = replace_lone_surrogates(raw_id)  # a JSON map's `\ud800`: no file or terminal takes it
            if not isinstance(entry, dict) or not isinstance(entry.get("from"), list) or not entry["from"]:
                raise QismError(f"{where}: label {label_id!r} needs a non-empty `from` list of raw labels")
            unknown = sorted(set(entry) - {"name", "from", "scope"})
            if unknown:
                raise QismError(
                    f"{where}: label {label_id!r} has unknown key(s) {', '.join(unknown)}; known: name, from, scope"
                )
            if not str(label_id).strip():
                raise QismError(f"{where}: a label id is empty; give each label an id, such as [labels.sports]")
            names[label_id] = replace_lone_surrogates(str(entry.get("name", label_id)))
            for raw in entry["from"]:
                source, _, label = str(raw).partition(":") if ":" in str(raw) else ("", "", str(raw))
                key = (source, label.strip())
                if key in targets and targets[key] != label_id:
                    raise QismError(f"{where}: raw label {raw!r} is mapped to both {targets[key]!r} and {label_id!r}")
                targets[key] = label_id
        _check_display_names(names, where)
        return cls(names, targets)

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        return cls.from_dict(read_config_file(path), str(path))

    def to_dict(self) -> dict:
        """The map in the form `from_dict` reads, as a model card keeps it."""
        raw = {label_id: [] for label_id in self.names}
        for (source, label), label_id in self.targets.items():
            raw[label_id].append(f"{source}:{label}" if source else label)
        return {"labels": {label_id: {"name": name, "from": raw[label_id]} for label_id, name in self.names.items()}}

    def target(self, source_path: str, label: str) -> str | None:
        """The label id of a raw label read from `source_path` (None when the map does not list it)."""
        label = label.strip()
        found = self.targets.get((Path(source_path).name, label)) or self.targets.get(("", label))
        if found is None and ":" in label:  # a raw label holding `:`, listed whole (read as source:label)
            source, _, rest = label.partition(":")
            found = self.targets.get((source, rest.strip()))
        return found

    def apply(self, documents: Iterable[tuple[str, Document]], unmapped: Counter) -> Iterator[tuple[str, Document]]:
        """Relabel each (source path, document); drop those whose label the map does not list (of a
        label list: none of whose labels), counting them in `unmapped` by `source file name:label`."""
        for source_path, doc in documents:
            # a list keeps the labels the map lists; a document with none of them is dropped and counted
            mapped = tuple(dict.fromkeys(to for label in doc.labels if (to := self.target(source_path, label))))
            if mapped:
                yield source_path, replace(doc, label=mapped[0], labels=mapped if len(mapped) > 1 else ())
                continue
            label_id = self.target(source_path, doc.label or "")
            if label_id is None:
                unmapped[f"{Path(source_path).name}:{doc.label}"] += 1
                continue
            yield source_path, replace(doc, label=label_id)


RECIPE_KEYS = ("sources", "label_map", "train", "read", "notes", "unseen_outlets", "short_input")
#: The recipe keys naming a bench's record for the card: the bench that makes it and its check.
BENCH_RECORDS = {
    "unseen_outlets": ("bench/unseen_outlets.py", check_unseen_outlets),
    "short_input": ("bench/short.py", check_short_input),
}


@dataclass
class Recipe:
    """Sources, label map, training and reading options, and notes for the card: one model's making."""

    sources: list[str]
    label_map: LabelMap | None = None
    train: dict = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    #: What a reader of the model card should know about the model (caveats, data choices).
    notes: list[str] = field(default_factory=list)
    #: Read options of the sources given as tables (their own columns, outlet), over `read`.
    source_read: dict[str, dict] = field(default_factory=dict)
    #: The file of the recipe's scores on outlets left out (`bench/unseen_outlets.py --save`), for
    #: the card, and what it holds (None until it is made).
    unseen_outlets_file: str | None = None
    unseen_outlets: dict | None = None
    #: The same for its scores on titles and short items (`bench/short.py --save`).
    short_input_file: str | None = None
    short_input: dict | None = None


def _bench_record(data: dict, key: str, path: Path) -> tuple[str | None, dict | None]:
    """The file a recipe's `key` names (relative to the recipe) and the record it holds, checked;
    (file, None) when it is not made yet (the bench reads the recipe to make it)."""
    name = data.get(key)
    if name is None:
        return None, None
    bench, check = BENCH_RECORDS[key]
    if not isinstance(name, str) or not name:
        raise QismError(f"{path}: `{key}` is the file name of a record of {bench} --save")
    name = str(path.parent / name)
    return name, check(read_config_file(name), name) if Path(name).exists() else None


def _recipe_sources(sources, where: Path) -> tuple[list[str], dict[str, dict]]:
    """Source paths, and the own read options of those given as a table: `{path = "...",
    text_column = "story", outlet = "hespress"}` reads that source with these on top of `[read]`."""
    if not isinstance(sources, list) or not sources:
        raise QismError(f"{where}: a recipe needs `sources = [...]`, a list of paths")
    paths, own = [], {}
    for entry in sources:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"]:
            options = {key: value for key, value in entry.items() if key != "path"}
            ReadOptions.from_dict(options, f"{where}: source {entry['path']}")  # refused now, before reading
            own[entry["path"]] = options
            paths.append(entry["path"])
        elif isinstance(entry, str) and entry:
            paths.append(entry)
        else:
            raise QismError(f"{where}: each source is a path or a table with `path` and read options; got {entry!r}")
    return paths, own


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe: `sources` (paths, relative to the current folder, or tables of a path and its
    own read options), an optional `label_map`
    (inline tables or a file path, relative to the recipe), `[train]` and `[read]` options, `notes`,
    `unseen_outlets` and `short_input`, the files (relative to the recipe) of its scores on outlets left
    out and on short input.
    Unknown keys and options are refused, so a typo never trains a different model silently."""
    path = Path(path)
    data = read_config_file(path)
    unknown = sorted(set(data) - set(RECIPE_KEYS))
    if unknown:
        raise QismError(f"{path}: unknown key(s) {', '.join(unknown)}; a recipe has {', '.join(RECIPE_KEYS)}")
    sources, source_read = _recipe_sources(data.get("sources"), path)
    label_map = data.get("label_map")
    if isinstance(label_map, str):
        label_map = LabelMap.load(path.parent / label_map)
    elif isinstance(label_map, dict):
        label_map = LabelMap.from_dict(label_map, f"{path}: label_map")
    elif label_map is not None:
        raise QismError(f"{path}: `label_map` is a file name or [label_map.labels.<id>] tables")
    tables = {key: data.get(key, {}) for key in ("train", "read")}
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise QismError(f"{path}: [{key}] is a table of options")
    TrainConfig.from_dict(tables["train"], f"{path}: [train]")  # refused now, before any corpus is read
    ReadOptions.from_dict(tables["read"], f"{path}: [read]")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise QismError(f"{path}: `notes` is a list of strings")
    records = [*_bench_record(data, "unseen_outlets", path), *_bench_record(data, "short_input", path)]
    return Recipe(sources, label_map, tables["train"], tables["read"], notes, source_read, *records)


@dataclass
class TrainingPlan:
    """What one training reads and how it fits, every option checked: `train`'s arguments."""

    sources: list[str]
    config: TrainConfig
    read_options: ReadOptions
    label_map: LabelMap | None
    notes: list[str]
    #: How to read the sources that the recipe gives their own read options.
    source_options: dict[str, ReadOptions] = field(default_factory=dict)
    #: The recipe's file of scores on outlets left out, and what it holds, whatever options it was
    #: measured with.
    unseen_outlets_file: str | None = None
    unseen_outlets: dict | None = None
    short_input_file: str | None = None
    short_input: dict | None = None

    def source_options_dict(self) -> dict[str, dict]:
        """The sources' own read options as plain data, as a bench's record keeps them."""
        return {source: asdict(options) for source, options in self.source_options.items()}


def plan_training(
    sources: Iterable[str] = (),
    *,
    recipe: str | Path | None = None,
    label_map: str | Path | None = None,
    train_options: dict | None = None,
    read_options: dict | None = None,
) -> TrainingPlan:
    """Merge a recipe with options given beside it (on the command line): each given option (a
    `cleaning` step too) overrides the recipe's of the same name and leaves the others as they are."""
    plan = load_recipe(recipe) if recipe is not None else Recipe(list(map(str, sources)))
    if recipe is not None and list(sources):
        raise QismError("give the sources in the recipe or on the command line, not both")
    train_options, read_options = dict(train_options or {}), dict(read_options or {})
    cleaning = {**plan.train.get("cleaning", {}), **train_options.pop("cleaning", {})}
    config = TrainConfig.from_dict({**plan.train, **train_options, **({"cleaning": cleaning} if cleaning else {})})
    read = ReadOptions.from_dict({**plan.read, **read_options})
    own = {
        source: ReadOptions.from_dict({**plan.read, **options, **read_options}, f"source {source}")
        for source, options in plan.source_read.items()
    }
    mapping = LabelMap.load(label_map) if label_map is not None else plan.label_map
    if not plan.sources:
        raise QismError("no training sources given")
    records = (plan.unseen_outlets_file, plan.unseen_outlets, plan.short_input_file, plan.short_input)
    return TrainingPlan(plan.sources, config, read, mapping, plan.notes, own, *records)
