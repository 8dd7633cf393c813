"""Write the report: ``report.html`` and ``report.json``, each replaced atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

from roboscale.files import write_atomically
from roboscale.report.page import render_html

HTML_NAME = "report.html"
JSON_NAME = "report.json"


def write_report(analysis: dict, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` (self-contained: inline CSS and SVG figures) and
    ``out_dir/report.json`` (the analysis dict itself, indented); return the HTML path.

    Both texts are made before anything is written, and each file appears whole:
    it is written under a temporary name in ``out_dir`` and then renamed over the
    old one, so an interrupted call leaves the previous report (or none), never half
    of one. Raises ValueError, before writing, when ``analysis`` is not JSON-ready.
    """
    if not isinstance(analysis, dict):
        raise ValueError(f"analysis is a {type(analysis).__name__}: write_report needs the analysis dict")
    json_text = analysis_json(analysis)
    html_text = render_html(analysis)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / JSON_NAME, json_text)
    return write_atomically(out / HTML_NAME, html_text)


def analysis_json(analysis: dict) -> str:
    """The analysis as indented JSON; a NaN, infinity or non-JSON value is refused with its location."""
    try:
        return json.dumps(analysis, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as error:
        where = find_unjsonable(analysis, "analysis") or "analysis"
        raise ValueError(
            f"{where} is not JSON-ready ({error}): use None for a missing number and plain Python "
            "numbers, lists and dicts (roboscale.fit.bootstrap.to_jsonable converts numpy values)"
        ) from error


def find_unjsonable(value, where: str) -> str | None:
    """The path (``analysis['groups'][0]['a']``) of the first value JSON cannot hold, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} key {key!r}"
            found = find_unjsonable(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unjsonable(item, f"{where}[{index}]")
            if found:
                return found
        return None
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    return where
