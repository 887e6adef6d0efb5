"""The statistics workbook (XLSX, openpyxl): exactly three sheets as the region reads
them — «Общая статистика» (the period's totals), «Школы» (one row a school, with a bar
chart), «Трэк активности» (one row a day, with a line chart). Headers in Russian, the
school's language; texts from the catalogue."""

import io
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.utils import get_column_letter

from parta_common.messages import Message

from .rules import ACTIVITY, FIELDS, ROLES

SUMMARY: Final = Message("statistics.sheet.summary")
SCHOOLS: Final = Message("statistics.sheet.schools")
TRACK: Final = Message("statistics.sheet.track")
SHARES: Final = (
    *(f"{r}s_{k}_share" for r in ROLES for k in ("registered", "signed_in")),
    "active_classes_share",
    "messages_per_week",
    "average_attendance",
)
# The columns of «Школы»: the school, its figures, then the shares.
SCHOOL_COLUMNS: Final = (*FIELDS, *SHARES)
# The track's columns beyond the date: the day's activity and who had signed in by then.
TRACK_COLUMNS: Final = (*ACTIVITY, *(f"{r}s_signed_in" for r in ROLES))


def header(name: str) -> str:
    return Message(f"statistics.col.{name}").ru


def _append(sheet: Any, values: list[Any]) -> None:
    """One row; names typed by people (a school's) may hold control characters, which
    XLSX cannot store (dropped), or start with ``=``, which stays text, never a formula."""
    row = [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values]
    sheet.append(row)
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.value.startswith("="):
            cell.data_type = "s"


def workbook_bytes(report: dict[str, Any]) -> bytes:
    """The report of ``Statistics.build`` as an XLSX file."""
    book = Workbook()
    summary = book.active
    assert summary is not None  # a new workbook has its first sheet
    summary.title = SUMMARY.ru
    _summary(summary, report)
    _schools(book.create_sheet(SCHOOLS.ru), report)
    _track(book.create_sheet(TRACK.ru), report)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _summary(sheet: Any, report: dict[str, Any]) -> None:
    title = Message("statistics.title").text(
        "ru", name=report["unit"]["name"], start=report["from"], end=report["to"]
    )
    _append(sheet, [title])
    _append(sheet, [Message("statistics.indicator").ru, Message("statistics.value").ru])
    totals = report["totals"]
    _append(sheet, [header("schools"), totals["schools"]])
    for name in SCHOOL_COLUMNS:
        _append(sheet, [header(name), totals[name]])
    sheet.column_dimensions["A"].width = 44
    sheet.column_dimensions["B"].width = 14


def _schools(sheet: Any, report: dict[str, Any]) -> None:
    _append(sheet, [header("school"), *(header(n) for n in SCHOOL_COLUMNS)])
    for school in report["schools"]:
        _append(sheet, [school["name"], *(school[n] for n in SCHOOL_COLUMNS)])
    sheet.column_dimensions["A"].width = 36
    for column in range(2, len(SCHOOL_COLUMNS) + 2):
        sheet.column_dimensions[get_column_letter(column)].width = 14
    sheet.freeze_panes = "B2"
    rows = len(report["schools"])
    if not rows:
        return
    chart = BarChart()
    chart.type = "bar"
    chart.title = Message("statistics.chart.schools").ru
    chart.height = max(8, rows // 2)
    chart.width = 24
    for name in ("messages", "lessons"):
        column = SCHOOL_COLUMNS.index(name) + 2
        chart.add_data(
            Reference(sheet, min_col=column, min_row=1, max_row=rows + 1), titles_from_data=True
        )
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=rows + 1))
    sheet.add_chart(chart, f"A{rows + 3}")


def _track(sheet: Any, report: dict[str, Any]) -> None:
    _append(sheet, [header("day"), *(header(n) for n in TRACK_COLUMNS)])
    for day in report["track"]:
        _append(sheet, [day["day"], *(day[n] for n in TRACK_COLUMNS)])
    sheet.column_dimensions["A"].width = 12
    for column in range(2, len(TRACK_COLUMNS) + 2):
        sheet.column_dimensions[get_column_letter(column)].width = 14
    sheet.freeze_panes = "B2"
    rows = len(report["track"])
    if not rows:
        return
    chart = LineChart()
    chart.title = Message("statistics.chart.track").ru
    chart.height = 9
    chart.width = 24
    for name in ("messages", "senders", "lessons", "broadcasts"):
        column = TRACK_COLUMNS.index(name) + 2
        chart.add_data(
            Reference(sheet, min_col=column, min_row=1, max_row=rows + 1), titles_from_data=True
        )
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=rows + 1))
    sheet.add_chart(chart, f"A{rows + 3}")
