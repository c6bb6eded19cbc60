"""One self-contained HTML page: tables, figures embedded as data URIs, provenance footer, random-weights banner."""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from featx.report.figures import Drawn, Figure
from featx.report.tables import LEGEND, Table, to_html

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: left; }
th { background: #eee; }
td.best { font-weight: bold; background: #e3f2e1; }
td.tied { background: #f4f8e8; }
.banner { background: #c62828; color: white; padding: 12px 16px; font-weight: bold; margin-bottom: 16px; }
.missing { border: 1px dashed #999; padding: 10px; color: #555; background: #fafafa; }
.problems { background: #fff3e0; border-left: 4px solid #ef6c00; padding: 6px 12px; }
.note { font-size: 12px; color: #555; margin: 2px 0 14px; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; border: 1px solid #ddd; }
footer { margin-top: 32px; font-size: 11px; color: #444; border-top: 1px solid #ccc; }
table.runs td:last-child { font-family: monospace; font-size: 10px; word-break: break-all; }
.failures table { background: #fff8f6; }
"""

# Counts what rendered, for a reader (or a headless-browser test) to check the page is not blank.
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.filter.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-tables', document.querySelectorAll('table').length);
  document.body.setAttribute('data-images-loaded', images.length);
});
"""


@dataclass
class StoreProvenance:
    """Where the numbers of one store key came from."""

    key: str
    dataset: str
    backbone: str
    img_size: object
    weights_hash: str
    random: bool
    path: str
    record_versions: list[str]
    store_schema: object  # from the store's zarr.json when it can be read here, else None
    store_version: object


def _store_attrs(path: str) -> dict:
    """The featx attributes of a local store's zarr.json, or {} when it is not reachable from here."""
    zarr_json = Path(path) / "zarr.json" if path else None
    if zarr_json is None or not zarr_json.is_file():
        return {}
    try:
        return json.loads(zarr_json.read_text()).get("attributes", {}).get("featx", {})
    except (OSError, json.JSONDecodeError):
        return {}


def store_provenance(records: pd.DataFrame) -> list[StoreProvenance]:
    """One entry per store key found in the records."""
    out = []
    if "store_key" not in records:
        return out
    for key, group in records.groupby(records["store_key"].fillna("(no store key)")):
        first = group.iloc[0]
        path = str(first.get("store_path") or "")
        attrs = _store_attrs(path)
        versions = sorted({str(v) for v in group.get("featx_version", pd.Series(dtype=object)).dropna()})
        out.append(StoreProvenance(
            key=str(key), dataset=str(first["dataset"]), backbone=str(first["backbone"]), img_size=first.get("img_size"),
            weights_hash=str(first.get("weights_hash")), random=bool(group["random_init"].fillna(False).astype(bool).any()),
            path=path, record_versions=versions, store_schema=attrs.get("schema"), store_version=attrs.get("featx_version"),
        ))
    return out


ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[^\s/:;,'\"()\[\]]+){2,}/?")


def body_text(text: str) -> str:
    """``text`` with absolute paths cut to their last two parts (``…/nih/KEY.zarr``): the page body names no
    machine's folders; the provenance footer gives them in full."""
    return ABSOLUTE_PATH.sub(lambda m: "…/" + "/".join(m.group(0).rstrip("/").split("/")[-2:]), text)


def run_rows(records: pd.DataFrame) -> list[dict[str, str]]:
    """One row per run (dataset, backbone, setting, store key, seed): when, with which featx, by which command."""
    out = []
    if records.empty:
        return out
    frame = records.assign(**{c: records.get(c) for c in ("command", "featx_version")})
    keys = ["dataset", "backbone", "setting", "store_key", "seed"]
    for values, group in frame.groupby([frame[k].astype(str) for k in keys], sort=True):
        created = sorted(str(c) for c in group["created"].dropna())
        commands = [str(c) for c in dict.fromkeys(group["command"].dropna())]
        out.append(dict(zip(keys, values)) | {
            "created": (created[0] if created[0] == created[-1] else f"{created[0]} – {created[-1]}") if created else "–",
            "featx": ", ".join(sorted({str(v) for v in group["featx_version"].dropna()})) or "–",
            "command": " | ".join(commands) or "not recorded"})
    return out


def _figure(figure: Figure) -> str:
    title = f"<figcaption><b>{html.escape(figure.title)}</b></figcaption>"
    if isinstance(figure, Drawn):
        data = base64.b64encode(figure.png.read_bytes()).decode("ascii")
        note = f'<p class="note">{html.escape(body_text(figure.note))}</p>' if figure.note else ""
        return (f'<figure id="{figure.key}">{title}<img alt="{html.escape(figure.title)}" '
                f'src="data:image/png;base64,{data}" width="{figure.size_px[0]}">{note}</figure>')
    return (f'<figure id="{figure.key}">{title}<div class="missing">Not drawn: {html.escape(body_text(figure.reason))}'
            "</div></figure>")


def _runs(records: pd.DataFrame) -> str:
    keys = ["dataset", "backbone", "setting", "store_key", "seed", "created", "featx", "command"]
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(r[k])}</td>" for k in keys) + "</tr>" for r in run_rows(records))
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in keys)
    return (f'<h3>Runs</h3><p>How each number was made: when, with which seed and by which command (the command '
            f'line or config recorded with it).</p><table class="runs"><thead><tr>{head}</tr></thead><tbody>{rows}'
            "</tbody></table>")


def _footer(stores: list[StoreProvenance], version: str, sources: list[str], records: pd.DataFrame) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.key)}</td><td>{html.escape(s.dataset)}</td><td>{html.escape(s.backbone)}</td>"
        f"<td>{html.escape(str(s.img_size))}</td><td>{html.escape(s.weights_hash)}{' (random weights)' if s.random else ''}</td>"
        f"<td>{html.escape(', '.join(s.record_versions))}</td>"
        f"<td>{html.escape(str(s.store_schema) if s.store_schema is not None else 'store not readable here')}</td>"
        f"<td>{html.escape(str(s.store_version or '–'))}</td><td>{html.escape(s.path)}</td></tr>"
        for s in stores
    )
    return (f"<footer><h3>Provenance</h3><p>Report made by featx {html.escape(version)} from "
            f"{html.escape(', '.join(sources))}.</p><table><thead><tr><th>store key</th><th>dataset</th><th>backbone</th>"
            "<th>size</th><th>weights hash</th><th>featx (records)</th><th>store schema</th><th>featx (store)</th>"
            f"<th>store path</th></tr></thead><tbody>{rows}</tbody></table>{_runs(records)}</footer>")


def render_html(
    *,
    tables: list[Table],
    figures: list[Figure],
    problems: list[str],
    records: pd.DataFrame,
    failed: Table | None = None,
    details: list[Table] | None = None,
    sources: list[str],
    version: str,
    csv_text: str = "",
) -> str:
    """The whole report as one HTML document that needs nothing else (no network, no files beside it)."""
    stores = store_provenance(records)
    random = [s for s in stores if s.random]
    banner = ""
    if random:
        names = ", ".join(sorted({f"{s.backbone} on {s.dataset}" for s in random}))
        banner = (f'<div class="banner">RANDOM WEIGHTS: numbers from {html.escape(names)} come from randomly '
                  "initialised backbones. They say nothing about any pretrained model.</div>")
    problem_list = ""
    if problems:
        items = "".join(f"<li>{html.escape(body_text(p))}</li>" for p in problems)
        problem_list = f'<div class="problems"><b>Problems found in the results</b><ul>{items}</ul></div>'
    failures = f'<div class="failures">{to_html(failed, body_text)}</div>' if failed is not None else ""
    more = "<h2>Details</h2>" + "".join(to_html(t) for t in details) if details else ""
    body = "".join(to_html(t) for t in tables) if tables else '<div class="missing">No test-split headline results to tabulate.</div>'
    if csv_text:
        data = base64.b64encode(csv_text.encode()).decode("ascii")
        body += f'<p><a download="tables.csv" href="data:text/csv;base64,{data}">Every cell as CSV (tables.csv)</a></p>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>featx report</title>'
        f"<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body>{banner}<h1>featx report</h1>"
        f"{problem_list}{failures}<h2>Tables</h2>{body}<p class=\"note\">{html.escape(LEGEND.replace('**', ''))}</p>"
        f"<h2>Figures</h2>{''.join(_figure(f) for f in figures)}{more}{_footer(stores, version, sources, records)}"
        "</body></html>"
    )
