"""Render a report (SPEC §5) as json, csv, xlsx or a terminal table.

The report is the JSON shape of SPEC §5: ``{"by": [...], "rows": [...]}``
plus optional top-level keys (``range``, ``generated_at``). Every format is a
view of that one dict, so ``report`` and ``replay`` export identically.

    >>> import io; out = io.BytesIO()
    >>> render({"by": ["tenant"], "rows": [{"tenant": "acme", "late_events": 0}]}, "csv", out)
    >>> out.getvalue()
    b'tenant,late_events\\r\\nacme,0\\r\\n'

Flat formats (csv, xlsx) share one column layout: the ``by`` dimensions,
then every other row key in first-seen order, a distribution spread over seven
columns ``<metric>.count`` ... ``<metric>.p99``, a list joined with ``;``,
``None`` an empty cell. csv follows RFC 4180 (CRLF, UTF-8 without BOM, minimal
quoting, no spreadsheet-formula escaping: the file is data). xlsx never turns
a string into a formula.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from rich import box
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

FORMATS = ("json", "csv", "xlsx", "table")

DISTRIBUTION_FIELDS = ("count", "sum", "min", "max", "p50", "p90", "p99")
"""The seven numbers of a distribution (SPEC §3), in report order."""

CONVERSATION_ATTRIBUTES = frozenset(
    {
        "customer_id",
        "customer_name",
        "subject",
        "agents",
        "channel",
        "status",
        "started_at",
        "csat_score",
    }
)
"""Row keys that describe a conversation (``--by conversation``, SPEC §3); a
``csat_score`` that is a distribution (a dict) is shown as one."""

TABLE_WIDTH = 100
"""Terminal width the table format is laid out for."""

TRANSPOSED_MAX_ROWS = 3
"""Up to this many rows, the table shows every metric of each row (transposed)."""

PRESET_TEXT_WIDTH = 32
"""A preset's text column (subject, customer name) is cut to this width in the table."""

KEY_METRICS: tuple[tuple[str, str, str | None], ...] = (
    ("started", "conversations_started", None),
    ("resolved", "conversations_resolved", None),
    ("FRT\np50", "first_response_seconds", "p50"),
    ("FRT\np90", "first_response_seconds", "p90"),
    ("resp\np50", "response_seconds", "p50"),
    ("CSAT\n4-5", "csat_satisfied", None),
    ("SLA\nbreaches", "sla_breaches", None),
)
"""(header, metric, distribution field) of the wide table's columns, many rows."""

_NO_VALUE = "-"
_NO_DIMENSION = "(none)"


def render(report: Mapping[str, Any], fmt: str, out: BinaryIO) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (one of ``FORMATS``)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown format {fmt!r} (choose json, csv, xlsx or table)")
    renderer(report, out)


@dataclass(frozen=True, slots=True)
class Column:
    """One flat column: a row key, and for a distribution one of its fields."""

    key: str
    field: str | None = None

    @property
    def header(self) -> str:
        return self.key if self.field is None else f"{self.key}.{self.field}"

    def value(self, row: Mapping[str, Any]) -> Any:
        """The cell: a number, a string or None (lists joined with ``;``)."""
        value = row.get(self.key)
        if self.field is not None:
            return value.get(self.field) if isinstance(value, Mapping) else None
        if isinstance(value, list | tuple):
            return ";".join(str(item) for item in value)
        if isinstance(value, Mapping):
            return orjson.dumps(value).decode()
        return value


def flat_columns(report: Mapping[str, Any]) -> list[Column]:
    """Dimensions in ``by`` order, then the other keys in first-seen row order."""
    dimensions: list[str] = list(report.get("by") or ())
    rows: Sequence[Mapping[str, Any]] = report.get("rows") or ()
    columns = [Column(dimension) for dimension in dimensions]
    for key in _metric_keys(rows, dimensions):
        if _is_distribution(rows, key):
            columns.extend(Column(key, field) for field in DISTRIBUTION_FIELDS)
        else:
            columns.append(Column(key))
    return columns


def _metric_keys(rows: Iterable[Mapping[str, Any]], dimensions: Sequence[str]) -> list[str]:
    """Row keys other than the dimensions, first row's order, later rows' extras after."""
    seen = dict.fromkeys(dimensions)
    keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in seen:
                seen[key] = None
                keys.append(key)
    return keys


def _is_distribution(rows: Iterable[Mapping[str, Any]], key: str) -> bool:
    """Kind of a key by its first non-None value (an empty distribution is still a dict)."""
    for row in rows:
        value = row.get(key)
        if value is not None:
            return isinstance(value, Mapping)
    return False


def _render_json(report: Mapping[str, Any], out: BinaryIO) -> None:
    """orjson keeps insertion order, so rows keep dimensions first (SPEC §5)."""
    out.write(
        orjson.dumps(
            report, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _render_csv(report: Mapping[str, Any], out: BinaryIO) -> None:
    """Streams through a text wrapper, detached at the end so ``out`` stays open."""
    columns = flat_columns(report)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow([column.header for column in columns])
        for row in report.get("rows") or ():
            writer.writerow([column.value(row) for column in columns])
    finally:
        text.flush()
        text.detach()


def _render_xlsx(report: Mapping[str, Any], out: BinaryIO) -> None:
    """Sheet "report" (the csv layout, header bold, header and dimensions frozen)
    and sheet "about" (``by``, ``range``, ``generated_at`` and other top-level keys).

    Write-only mode streams rows, so a ``--by conversation`` report of many
    rows does not hold every cell object in memory.
    """
    columns = flat_columns(report)
    rows: Sequence[Mapping[str, Any]] = report.get("rows") or ()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("report")
    sheet.freeze_panes = f"{get_column_letter(len(report.get('by') or ()) + 1)}2"
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = _xlsx_width(column, rows)
    bold = Font(bold=True)
    sheet.append([_xlsx_cell(sheet, column.header, bold) for column in columns])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, column.value(row)) for column in columns])

    about = workbook.create_sheet("about")
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = 40
    for name, value in _about_items(report):
        about.append([_xlsx_cell(about, name, bold), _xlsx_cell(about, value)])
    workbook.save(out)


def _xlsx_cell(sheet: Any, value: Any, font: Font | None = None) -> WriteOnlyCell:
    """A cell that keeps numbers as numbers and strings as strings, never formulas."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value) or None
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell


def _xlsx_width(column: Column, rows: Sequence[Mapping[str, Any]]) -> float:
    """Wide enough for the header, and for the values of a text column (capped)."""
    width = len(column.header)
    if column.field is None:
        for row in rows[:200]:
            value = column.value(row)
            if isinstance(value, str):
                width = max(width, len(value))
    return min(max(width, 8), 48) + 2


def _about_items(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Top-level keys other than rows, nested mappings as ``range.from`` etc."""
    items: list[tuple[str, Any]] = []
    for name, value in report.items():
        if name == "rows":
            continue
        if isinstance(value, Mapping):
            items.extend((f"{name}.{key}", _scalar(inner)) for key, inner in value.items())
        elif name == "columns" and isinstance(value, list):
            items.extend(_column_definition(column) for column in value)
        else:
            items.append((name, _scalar(value)))
    return items


def _column_definition(column: Any) -> tuple[str, Any]:
    """A preset column (``{"key", "label", "unit", "definition"}``) as one about line."""
    if not isinstance(column, Mapping):
        return ("columns", _scalar(column))
    text = f"{column.get('label')} ({column.get('unit')}): {column.get('definition')}"
    return (f"column {column.get('key')}", text)


def _scalar(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return orjson.dumps(value).decode()
    return value


def _render_table(report: Mapping[str, Any], out: BinaryIO) -> None:
    """A plain-text view for a 100-column terminal.

    Up to ``TRANSPOSED_MAX_ROWS`` rows, each row gets its own tables: its
    attributes, its non-zero counters (two metric/value pairs a line) and its
    non-empty distributions (count, p50, p90, p99, max, sum; min is in the
    flat formats). Past that, one wide table of the dimensions and
    ``KEY_METRICS``. Text from events is never read as rich markup.
    """
    rows: Sequence[Mapping[str, Any]] = report.get("rows") or ()
    dimensions: list[str] = list(report.get("by") or ())
    parts: list[RenderableType] = [Text(_heading(report, len(rows)))]
    preset_columns = report.get("columns")
    if not rows:
        parts.append(Text("no rows"))
    elif preset_columns:
        parts.extend(_preset_tables(rows, dimensions, preset_columns))
    elif len(rows) <= TRANSPOSED_MAX_ROWS:
        for row in rows:
            parts.extend(_row_tables(row, dimensions))
    else:
        parts.append(_wide_table(rows, dimensions))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=TABLE_WIDTH,
        color_system=None,
        force_terminal=False,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(Group(*parts))
    lines = (line.rstrip() for line in buffer.getvalue().splitlines())
    out.write("".join(f"{line}\n" for line in lines).encode("utf-8"))


def _heading(report: Mapping[str, Any], row_count: int) -> str:
    rows = "1 row" if row_count == 1 else f"{row_count} rows"
    words = [f"by {', '.join(report.get('by') or ()) or '-'}", rows]
    if report.get("title"):
        words.insert(0, str(report["title"]))
    span = report.get("range")
    if isinstance(span, Mapping):
        words.append(f"range {span.get('from') or '…'} to {span.get('to') or '…'}")
    if report.get("generated_at"):
        words.append(f"generated {report['generated_at']}")
    return " · ".join(words)


def _row_tables(row: Mapping[str, Any], dimensions: Sequence[str]) -> list[RenderableType]:
    """Every metric of one row, transposed; zeros and empty distributions left out."""
    title = " · ".join(f"{d} {_dimension(row.get(d))}" for d in dimensions) or "all"
    attributes: list[tuple[str, str]] = []
    counters: list[tuple[str, str]] = []
    distributions: list[tuple[str, Mapping[str, Any]]] = []
    hidden = 0
    for key, value in row.items():
        if key in dimensions:
            continue
        if isinstance(value, Mapping):
            if value.get("count"):
                distributions.append((key, value))
            else:
                hidden += 1
        elif key in CONVERSATION_ATTRIBUTES or isinstance(value, str | list | tuple):
            attributes.append((key, _display(value)))
        elif value:
            counters.append((key, _display(value)))
        else:
            hidden += 1
    parts: list[RenderableType] = [Text(""), Text(title, style="bold")]
    if attributes:
        parts.append(_pairs_table(attributes, per_line=1, justify="left"))
    if counters:
        parts.append(_pairs_table(counters, per_line=2, justify="right"))
    if distributions:
        parts.append(_distribution_table(distributions))
    if hidden:
        parts.append(Text(f"{hidden} metrics at 0 or with no observation not shown"))
    return parts


def _pairs_table(pairs: Sequence[tuple[str, str]], per_line: int, justify: JustifyMethod) -> Table:
    """name | value pairs, ``per_line`` pairs a line, filled column by column."""
    table = Table(box=None, show_header=False, pad_edge=False)
    for _ in range(per_line):
        table.add_column(no_wrap=True)
        table.add_column(justify=justify, overflow="fold")
    height = -(-len(pairs) // per_line)
    for line in range(height):
        cells: list[Text] = []
        for pair in pairs[line::height]:
            cells.extend(Text(part) for part in pair)
        table.add_row(*cells)
    return table


def _distribution_table(distributions: Sequence[tuple[str, Mapping[str, Any]]]) -> Table:
    fields = ("count", "p50", "p90", "p99", "max", "sum")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("distribution", no_wrap=True)
    for field in fields:
        table.add_column(field, justify="right", no_wrap=True)
    for key, summary in distributions:
        table.add_row(Text(key), *(Text(_display(summary.get(field))) for field in fields))
    return table


def _wide_table(rows: Sequence[Mapping[str, Any]], dimensions: Sequence[str]) -> Table:
    """Dimensions plus the key metrics that fit in ``TABLE_WIDTH``, one line per row.

    Dimension values are never cut (long ones fold); key metrics are dropped
    from the end of ``KEY_METRICS`` when the dimensions leave too little room.
    """
    dimension_widths = [
        min(36, max(len(d), *(len(_dimension(row.get(d))) for row in rows))) for d in dimensions
    ]
    room = TABLE_WIDTH - sum(width + 3 for width in dimension_widths)
    columns: list[tuple[str, list[str]]] = []
    legend: list[str] = []
    for header, key, field in KEY_METRICS:
        if not any(key in row for row in rows):
            continue
        shown = [_display(_metric_value(row, key, field)) for row in rows]
        width = max(len(line) for line in [*header.splitlines(), *shown]) + 3
        if width > room:
            break
        room -= width
        columns.append((header, shown))
        name = key if field is None else f"{key}.{field}"
        legend.append(f"{header.replace(chr(10), ' ')} = {name}")
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption=f"{', '.join(legend)}. Every metric: --format csv, xlsx or json.",
        caption_justify="left",
    )
    for dimension, width in zip(dimensions, dimension_widths, strict=True):
        table.add_column(dimension, overflow="fold", min_width=width)
    for header, _ in columns:
        table.add_column(header, justify="right", no_wrap=True)
    for index, row in enumerate(rows):
        cells = [Text(_dimension(row.get(d))) for d in dimensions]
        cells.extend(Text(shown[index]) for _, shown in columns)
        table.add_row(*cells)
    return table


def _preset_tables(
    rows: Sequence[Mapping[str, Any]],
    dimensions: Sequence[str],
    columns: Sequence[Mapping[str, Any]],
) -> list[RenderableType]:
    """A preset's own columns (``columns``), headed by their labels, in their order.

    Nothing is dropped: when the columns do not fit in ``TABLE_WIDTH`` beside
    the dimensions, they continue in a further table under the first one.
    Numbers are right-aligned; text is cut to ``PRESET_TEXT_WIDTH``.
    """
    dimension_widths = [
        min(36, max(len(d), *(len(_dimension(row.get(d))) for row in rows))) for d in dimensions
    ]
    room = TABLE_WIDTH - sum(width + 3 for width in dimension_widths)
    chunks: list[list[tuple[str, list[str], bool]]] = [[]]
    left = room
    for column in columns:
        key = str(column.get("key"))
        if key in dimensions:
            continue
        values = [row.get(key) for row in rows]
        numeric = all(isinstance(v, int | float) for v in values if v is not None)
        shown = [_display(value) for value in values]
        if not numeric:
            shown = [_cut(text, PRESET_TEXT_WIDTH) for text in shown]
        header = (
            "\n".join(textwrap.wrap(str(column.get("label") or key), 12, break_long_words=False))
            or key
        )
        width = max(len(line) for line in [*header.splitlines(), *shown]) + 3
        if width > left and chunks[-1]:
            chunks.append([])
            left = room
        left -= width
        chunks[-1].append((header, shown, numeric))
    tables: list[RenderableType] = []
    for chunk in chunks:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for dimension, width in zip(dimensions, dimension_widths, strict=True):
            table.add_column(dimension, overflow="fold", min_width=width)
        for header, _, numeric in chunk:
            table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
        for index, row in enumerate(rows):
            cells = [Text(_dimension(row.get(d))) for d in dimensions]
            cells.extend(Text(shown[index]) for _, shown, _ in chunk)
            table.add_row(*cells)
        tables.append(table)
    tables.append(Text('Definitions: the xlsx sheet "about" and json "columns".'))
    return tables


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}…"


def _metric_value(row: Mapping[str, Any], key: str, field: str | None) -> Any:
    value = row.get(key)
    if field is None:
        return value
    return value.get(field) if isinstance(value, Mapping) else None


def _dimension(value: Any) -> str:
    return _NO_DIMENSION if value is None else str(value)


def _display(value: Any) -> str:
    """Numbers for reading, not parsing: thousands separators, 2 decimals below 1000."""
    if value is None:
        return _NO_VALUE
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2g}"
    shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    return shown.removeprefix("-") if float(shown.replace(",", "")) == 0 else shown


_RENDERERS: dict[str, Callable[[Mapping[str, Any], BinaryIO], None]] = {
    "json": _render_json,
    "csv": _render_csv,
    "xlsx": _render_xlsx,
    "table": _render_table,
}
