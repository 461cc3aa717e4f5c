"""The report's building blocks as HTML fragments: pandas tables, matplotlib figures, and a
downloadable compressed table. Every string from results is escaped here (pandas'
``to_html(escape=True)``, ``html.escape``), so a fragment is safe to insert as it is.
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from markupsafe import Markup

# Past this many rows a table is cut, and the whole of it is offered as a download.
MAX_TABLE_ROWS = 200
_IDS = itertools.count()


@dataclass
class Section:
    """One ``<section>`` of the report: its id and heading (as registered with
    ``sections.registry.section``), a one-line ``empty`` message when it has no data, else
    paragraphs and fragments in order."""

    id: str
    title: str
    blocks: list[Markup] = field(default_factory=list)
    empty: str = ""

    def add(self, fragment: Markup | str) -> None:
        """Add a fragment; a plain str is text and is escaped."""
        self.blocks.append(fragment if isinstance(fragment, Markup) else para(fragment))


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def para(text: str, cls: str = "") -> Markup:
    c = f' class="{esc(cls)}"' if cls else ""
    return Markup(f"<p{c}>{esc(text)}</p>")


def bullets(items: Sequence[str]) -> Markup:
    return Markup("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")


def table(df: pd.DataFrame, *, numeric: Sequence[str] = (), caption: str = "",
          max_rows: int = MAX_TABLE_ROWS, download: str = "") -> Markup:
    """A pandas table (escaped), at most ``max_rows`` rows; when cut, the full table follows
    as a gzip-compressed CSV download named ``download`` (or a note, without one)."""
    shown = df.head(max_rows)
    from pandas.io.formats.style import Styler

    styler = Styler(shown, uuid=f"c{next(_IDS)}", cell_ids=False).hide(axis="index").format(
        escape="html", na_rep="", precision=3)
    nums = [c for c in shown.columns if c in numeric]
    if nums:
        classes = pd.DataFrame("", index=shown.index, columns=shown.columns)
        classes[nums] = "num"
        styler = styler.set_td_classes(classes)
    body = styler.set_table_attributes('class="t"').to_html(doctype_html=False)
    cap = f"<p class='cap'>{esc(caption)}</p>" if caption else ""
    out = f"{cap}<div class='tw'>{body}</div>"
    if len(df) > max_rows:
        out += "<p class='cut'>" + esc(f"Showing {max_rows} of {len(df):,} rows.")
        if download:
            out += " " + str(download_link(df, download))
        out += "</p>"
    return Markup(out)


def details(summary: str, inner: Markup | str) -> Markup:
    body = inner if isinstance(inner, Markup) else para(inner)
    return Markup(f"<details><summary>{esc(summary)}</summary>{body}</details>")


def download_link(df: pd.DataFrame, name: str) -> Markup:
    """The whole table as a gzip-compressed CSV inside the page (a data: URI with
    ``download``), so a report stays one file and the full table is still there."""
    raw = df.to_csv(index=False).encode("utf-8")
    data = base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")
    kb = len(data) * 3 / 4 / 1024
    return Markup(f"<a download='{esc(name)}' href='data:application/gzip;base64,{data}'>"
                  f"Download all {len(df):,} rows ({esc(name)}, {kb:,.0f} KiB)</a>")


def figure(fig: Any, alt: str, caption: str = "") -> Markup:
    """A matplotlib figure as an embedded PNG; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Markup(f"<figure><img alt='{esc(alt)}' src='{uri}'>{cap}</figure>")
