"""Label maps and recipes: which sources, which labels and which options make a model.

A label map renames and merges the labels of several corpora into one taxonomy, each label with an id
and a display name, and drops the labels it does not list. A recipe names the sources, the label map
and the training options, so `qism train --recipe FILE` rebuilds a model the same way every time.

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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .corpus import Document, ReadOptions
from .errors import QismError
from .trainer import TrainConfig


def read_config_file(path: str | Path) -> dict:
    """A TOML or JSON file as a dict, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise QismError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise QismError(f"{path}: cannot parse ({err})") from None
    if not isinstance(data, dict):
        raise QismError(f"{path}: expected a table of settings")
    return data


@dataclass
class LabelMap:
    """Raw labels (optionally qualified by source file name) to label ids with display names."""

    names: dict[str, str]
    #: (source file name or "", raw label) -> label id
    targets: dict[tuple[str, str], str]
    unmapped: Counter = field(default_factory=Counter)

    @classmethod
    def from_dict(cls, data: dict, where: str = "label map") -> LabelMap:
        labels = data.get("labels", data)
        if not isinstance(labels, dict) or not labels:
            raise QismError(f"{where}: expected [labels.<id>] tables with `name` and `from`")
        names, targets = {}, {}
        for label_id, entry in labels.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("from"), list) or not entry["from"]:
                raise QismError(f"{where}: label {label_id!r} needs a non-empty `from` list of raw labels")
            names[label_id] = str(entry.get("name", label_id))
            for raw in entry["from"]:
                source, _, label = str(raw).rpartition(":")
                key = (source, label.strip())
                if key in targets and targets[key] != label_id:
                    raise QismError(f"{where}: raw label {raw!r} is mapped to both {targets[key]!r} and {label_id!r}")
                targets[key] = label_id
        return cls(names, targets)

    @classmethod
    def load(cls, path: str | Path) -> LabelMap:
        return cls.from_dict(read_config_file(path), str(path))

    def target(self, source_path: str, label: str) -> str | None:
        label = label.strip()
        return self.targets.get((Path(source_path).name, label)) or self.targets.get(("", label))

    def apply(self, documents: Iterable[tuple[str, Document]]) -> Iterator[tuple[str, Document]]:
        """Relabel each document; drop (and count) those whose label the map does not list."""
        for source_path, doc in documents:
            label_id = self.target(source_path, doc.label or "")
            if label_id is None:
                self.unmapped[f"{Path(source_path).name}:{doc.label}"] += 1
                continue
            yield source_path, replace(doc, label=label_id)


@dataclass
class Recipe:
    """Sources, label map and training options for one model."""

    sources: list[str]
    label_map: LabelMap | None
    options: dict
    read_options: ReadOptions
    #: What a reader of the model card should know about the model (caveats, data choices).
    notes: list[str] = field(default_factory=list)
    #: How to read the sources that need more than `read_options` (their own columns, outlet name).
    source_options: dict[str, ReadOptions] = field(default_factory=dict)


def _recipe_sources(sources: list, read: dict, where: Path) -> tuple[list[str], dict[str, ReadOptions]]:
    """Source paths, and the read options of those given as a table: `{path = "...", text_column =
    "story", outlet = "hespress"}` reads that source with these options on top of `[read]`."""
    paths, options = [], {}
    for entry in sources:
        if isinstance(entry, str):
            paths.append(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise QismError(f"{where}: each source is a path or a table with `path` and read options; got {entry!r}")
        path = entry["path"]
        own = {key: value for key, value in entry.items() if key != "path"}
        options[path] = _read_options({**read, **own}, f"{where}: source {path}")
        paths.append(path)
    return paths, options


def _read_options(values: dict, where: str) -> ReadOptions:
    known = {f.name for f in fields(ReadOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise QismError(f"{where}: unknown read option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return ReadOptions(**values)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe: `sources` (paths, relative to the current folder, or tables of a path and its
    own read options), an optional `label_map` (inline tables or a file path, relative to the recipe),
    `[train]` options and `[read]` options."""
    path = Path(path)
    data = read_config_file(path)
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise QismError(f"{path}: a recipe needs `sources = [...]`")
    label_map = data.get("label_map")
    if isinstance(label_map, str):
        label_map = LabelMap.load(path.parent / label_map)
    elif isinstance(label_map, dict):
        label_map = LabelMap.from_dict(label_map, f"{path}: label_map")
    options = data.get("train", {})
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise QismError(f"{path}: unknown [train] option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    read = data.get("read", {})
    read_options = _read_options(read, f"{path}: [read]")
    paths, source_options = _recipe_sources(sources, read, path)
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise QismError(f"{path}: `notes` is a list of strings")
    return Recipe(paths, label_map, options, read_options, notes, source_options)
