"""Reading an MLTable folder locally: the ``MLTable`` file's paths and the transformations
the local backend can apply, without the ``mltable`` package (it needs Azure ML's data
runtime, which is not installed here).

Read: ``paths`` entries ``file``, ``folder`` and ``pattern`` relative to the folder (or
absolute); transformations ``read_delimited`` (``delimiter``, ``header``, ``encoding``),
``read_parquet``, ``drop_columns``, ``keep_columns`` and ``take``. Anything else (a
remote path, ``read_json_lines``, ``filter``...) is refused by name, never skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import InvalidRequest, PermanentError
from ...yaml_files import load_yaml

MLTABLE_FILE = "MLTable"
#: ``read_delimited.header`` values read as "the first row names the columns".
HEADER_ROW = ("all_files_same_headers", "from_first_file", "all_files_different_headers")


def is_mltable_folder(path: Path) -> bool:
    return path.is_dir() and (path / MLTABLE_FILE).is_file()


def read_mltable(folder: Path, read_csv: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """The table an MLTable folder describes; PermanentError saying what cannot be read.
    ``read_csv(path, **options)`` reads one delimited file."""
    spec_file = folder / MLTABLE_FILE
    try:
        spec = load_yaml(spec_file.read_bytes(), str(spec_file))
    except (OSError, InvalidRequest) as exc:
        raise PermanentError(f"cannot read {spec_file}: {exc}") from None
    if not isinstance(spec, dict):
        raise PermanentError(f"{spec_file} is not an MLTable file (no mapping at its top)")
    files = _files(folder, spec.get("paths"), spec_file)
    steps = spec.get("transformations") or []
    if not isinstance(steps, list) or not steps:
        raise PermanentError(f"{spec_file}: no transformations; the first must say how to read")
    reader, *rest = (_step(item, spec_file) for item in steps)
    kind, options = reader
    if kind == "read_delimited":
        frames = [read_csv(path, **_delimited(options, spec_file)) for path in files]
    elif kind == "read_parquet":
        frames = [pd.read_parquet(path) for path in files]
    else:
        raise PermanentError(f"{spec_file}: the first transformation must read the files")
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for kind, options in rest:
        table = _apply(table, kind, options, spec_file)
    return table


def _files(folder: Path, paths: Any, spec_file: Path) -> list[Path]:
    if not isinstance(paths, list) or not paths:
        raise PermanentError(f"{spec_file}: no paths")
    found: list[Path] = []
    for entry in paths:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise PermanentError(f"{spec_file}: a path entry is one of file, folder, pattern")
        ((kind, value),) = entry.items()
        if not isinstance(value, str) or "://" in value:
            raise PermanentError(f"{spec_file}: {kind} {value!r} is not a local path")
        target = Path(value) if Path(value).is_absolute() else folder / value
        if kind == "file":
            found.append(target)
        elif kind == "folder":
            found.extend(sorted(p for p in target.iterdir() if p.is_file()))
        elif kind == "pattern":
            found.extend(sorted(folder.glob(value)))
        else:
            raise PermanentError(f"{spec_file}: unknown path kind {kind!r}")
    missing = [str(p) for p in found if not p.is_file()]
    if missing or not found:
        raise PermanentError(f"{spec_file}: no such file(s): {', '.join(missing) or value}")
    return found


def _step(item: Any, spec_file: Path) -> tuple[str, Any]:
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        ((kind, options),) = item.items()
        return str(kind), options
    raise PermanentError(f"{spec_file}: a transformation is one name and its options")


def _delimited(options: Any, spec_file: Path) -> dict[str, Any]:
    options = dict(options or {})
    header = options.pop("header", "all_files_same_headers")
    if header not in (*HEADER_ROW, "no_header"):
        raise PermanentError(f"{spec_file}: read_delimited header {header!r} is not read here")
    read: dict[str, Any] = {
        "sep": options.pop("delimiter", ","),
        "encoding": {"utf8": "utf-8"}.get(options.get("encoding", "utf8"), "utf-8"),
        "header": None if header == "no_header" else 0,
    }
    options.pop("encoding", None)
    options.pop("empty_as_string", None)  # pandas reads empty fields as missing either way
    if options:
        raise PermanentError(f"{spec_file}: read_delimited {', '.join(options)} not read here")
    return read


def _apply(table: pd.DataFrame, kind: str, options: Any, spec_file: Path) -> pd.DataFrame:
    if kind in ("drop_columns", "keep_columns"):
        columns = [options] if isinstance(options, str) else list(options or [])
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise PermanentError(f"{spec_file}: {kind} names missing column(s) {missing}")
        return table.drop(columns=columns) if kind == "drop_columns" else table[columns]
    if kind == "take" and isinstance(options, int):
        return table.head(options)
    raise PermanentError(f"{spec_file}: the transformation {kind!r} is not applied locally")
