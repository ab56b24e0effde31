"""The ``insight/`` artifact folder of a winning run, and reading it back for the report.

The local trainer writes ``insight/insight.json`` (the numbers, which rows they come
from, the charts in order with their titles and captions, and what was skipped and why)
and one SVG file per chart. Any other SVG file in the folder (an explanation stored there
by other tooling) is read too, titled by its file name. Reading never raises on odd
content: an unreadable summary or chart is left out, said in a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The artifact folder of a run holding its insight, and the summary file in it.
INSIGHT_FOLDER = "insight"
SUMMARY_FILE = "insight.json"
#: Charts larger than this are left out of the report (a self-contained page stays small).
MAX_CHART_BYTES = 2_000_000


@dataclass(frozen=True)
class Chart:
    """One chart: its file name, title, caption and SVG text."""

    file: str
    title: str
    caption: str
    svg: str


@dataclass(frozen=True)
class ModelInsight:
    """What the report shows of a run's insight folder."""

    rows: str = ""
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)


def chart_entry(file: str, title: str, caption: str) -> dict[str, str]:
    """A chart's entry in the summary's ``charts`` list."""
    return {"file": file, "title": title, "caption": caption}


def read_insight(folder: Path) -> ModelInsight | None:
    """The insight in ``folder`` (a downloaded ``insight/``); None when it holds nothing."""
    if not folder.is_dir():
        return None
    notes: list[str] = []
    summary: dict[str, Any] = {}
    summary_path = folder / SUMMARY_FILE
    if summary_path.is_file():
        try:
            loaded = json.loads(summary_path.read_text(encoding="utf-8"))
            summary = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            notes.append(f"{SUMMARY_FILE} could not be read")
    entries = [e for e in summary.get("charts", []) if isinstance(e, dict) and "file" in e]
    listed = {str(e["file"]) for e in entries}
    extra = sorted(p.name for p in folder.glob("*.svg") if p.name not in listed)
    entries += [chart_entry(name, name.removesuffix(".svg"), "") for name in extra]
    charts: list[Chart] = []
    for entry in entries:
        name = Path(str(entry["file"])).name  # never outside the folder
        path = folder / name
        try:
            if path.stat().st_size > MAX_CHART_BYTES:
                notes.append(f"{name} is larger than {MAX_CHART_BYTES} bytes: left out")
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            notes.append(f"{name} could not be read")
            continue
        if "<svg" not in text:
            notes.append(f"{name} is not an SVG image")
            continue
        charts.append(
            Chart(name, str(entry.get("title", name)), str(entry.get("caption", "")), text)
        )
    skipped = summary.get("skipped", [])
    notes = [str(s) for s in skipped if isinstance(s, str)] + notes
    if not charts and not summary and not notes:
        return None
    numbers = summary.get("numbers", {})
    return ModelInsight(
        rows=str(summary.get("rows", "")),
        charts=charts,
        notes=notes,
        numbers=numbers if isinstance(numbers, dict) else {},
    )
