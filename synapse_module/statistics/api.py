"""Statistics of schools and of units (regions, municipalities), issue 11.

Each school's figures of a day (roster counts against registered and signed-in people,
classes with an active chat, messages, video lessons, broadcasts) are computed by
:meth:`Statistics.compute_day` from the roster's interface, the lessons' and broadcasts'
look-ups and Synapse's own tables (``store``); the daily job writes one row per school
per day (``parta_stats_daily``), so a track over months is one query. Past days come
from those rows, the current day is computed live. Routes answer JSON or an XLSX
workbook (``workbook``); every read is in the audit log.
"""

import datetime
import logging
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest
from synapse.module_api.errors import Codes

from ..errors import forbidden, matrix_error
from ..http import check_json, requester_id, send_file
from ..query import query_string
from ..requests import request_schemas
from ..roster.rules import RoomKind
from . import rules
from . import store as db
from .rules import DayInputs, Figures
from .rules import SchoolLike as School
from .texts import NOT_ALLOWED
from .workbook import workbook_bytes

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

REQUEST_SCHEMAS: Final = request_schemas(__package__)
_PERIOD: Final = REQUEST_SCHEMAS["StatisticsPeriod"]
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Statistics:
    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("GET", r"/units/([^/]+)/statistics", "get_unit_statistics"),
        ("GET", r"/units/([^/]+)/statistics\.xlsx", "get_unit_workbook"),
        ("GET", r"/schools/([^/]+)/statistics", "get_school_statistics"),
        ("GET", r"/schools/([^/]+)/statistics\.xlsx", "get_school_workbook"),
    )

    def __init__(self, module: "PartaModule"):
        self._module = module
        self._store = module.store
        self._roster = module.roster
        self._tz = zoneinfo.ZoneInfo(module.config.default_timezone)

    # -- routes ---------------------------------------------------------------------

    async def get_unit_statistics(
        self, request: SynapseRequest, unit_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._module.api, request)
        unit, schools = await self._roster.unit_to_read(user_id, unit_id)
        report = await self.report(request, schools, _unit_head(unit))
        await self._roster.audit(user_id, "statistics.read", None, unit_id, _audited(report))
        return 200, report

    async def get_unit_workbook(self, request: SynapseRequest, unit_id: str) -> None:
        user_id = await requester_id(self._module.api, request)
        unit, schools = await self._roster.unit_to_read(user_id, unit_id)
        report = await self.report(request, schools, _unit_head(unit))
        await self._roster.audit(user_id, "statistics.xlsx", None, unit_id, _audited(report))
        send_file(request, workbook_bytes(report), XLSX, f"statistics-{unit_id}.xlsx")

    async def get_school_statistics(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, school = await self._school(request, school_id)
        report = await self.report(request, [school], _school_head(school))
        await self._roster.audit(user_id, "statistics.read", school_id, None, _audited(report))
        return 200, report

    async def get_school_workbook(self, request: SynapseRequest, school_id: str) -> None:
        user_id, school = await self._school(request, school_id)
        report = await self.report(request, [school], _school_head(school))
        await self._roster.audit(user_id, "statistics.xlsx", school_id, None, _audited(report))
        send_file(request, workbook_bytes(report), XLSX, f"statistics-{school_id}.xlsx")

    async def _school(self, request: SynapseRequest, school_id: str) -> tuple[str, School]:
        """The school's administrators, coordinators above it and the operator."""
        user_id = await requester_id(self._module.api, request)
        school = await self._roster.school(school_id)
        if not await self._roster.may_manage(user_id, school):
            raise forbidden(NOT_ALLOWED)
        return user_id, school

    # -- the report -------------------------------------------------------------------

    def today(self) -> datetime.date:
        return rules.day_of(_now_ms(), self._tz)

    async def report(
        self, request: SynapseRequest, schools: Sequence[School], head: dict[str, Any]
    ) -> dict[str, Any]:
        today = self.today()
        raw = {k: v for k in ("from", "to") if (v := query_string(request, k)) is not None}
        check_json(raw, _PERIOD)
        period = rules.parse_period(raw.get("from"), raw.get("to"), today)
        if not isinstance(period, tuple):
            raise matrix_error(400, Codes.INVALID_PARAM, period, max_days=rules.MAX_DAYS)
        start, end = period
        return await self.build(schools, head, start, end)

    async def build(
        self,
        schools: Sequence[School],
        head: dict[str, Any],
        start: datetime.date,
        end: datetime.date,
    ) -> dict[str, Any]:
        """The report of these schools over ``[start, end]``: snapshot rows for past
        days, the current day live."""
        today = self.today()
        ids = [s.school_id for s in schools]
        per_school: dict[str, dict[datetime.date, Figures]] = defaultdict(dict)
        last_past = min(end, today - datetime.timedelta(1))
        if start <= last_past and ids:
            rows = await self._store.run(
                "parta_stats_days", db.days_txn, ids, start.isoformat(), last_past.isoformat()
            )
            for school_id, iso_day, figures in rows:
                per_school[school_id][datetime.date.fromisoformat(iso_day)] = figures
        if start <= today <= end and ids:
            live = await self.compute_day(ids, today)
            for school_id, figures in live.items():
                per_school[school_id][today] = figures
        n_days = (end - start).days + 1
        school_rows = []
        totals_track: dict[datetime.date, Figures] = defaultdict(Figures)
        for school in schools:
            track = per_school.get(school.school_id, {})
            for day, figures in track.items():
                totals_track[day] = totals_track[day] + figures
            figures = rules.period_figures(track)
            school_rows.append(
                {
                    "school_id": school.school_id,
                    "name": school.name,
                    "unit_id": school.unit_id,
                    **_figures_json(figures, rules.per_week([track])),
                }
            )
        totals = rules.period_figures(totals_track)
        totals_per_week = rules.per_week(per_school.get(s.school_id, {}) for s in schools)
        return {
            "unit": head,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "days": n_days,
            "totals": {"schools": len(schools), **_figures_json(totals, totals_per_week)},
            "schools": school_rows,
            "track": [
                {"day": day.isoformat(), **{f: getattr(totals_track[day], f) for f in rules.FIELDS}}
                for day in sorted(totals_track)
            ],
        }

    # -- one day ----------------------------------------------------------------------

    async def compute_day(self, school_ids: list[str], day: datetime.date) -> dict[str, Figures]:
        """These schools' figures of ``day``, from the roster, the features and Synapse."""
        start, end = rules.day_bounds(day, self._tz)
        now = _now_ms()
        await self._store.run("parta_stats_sweep", db.sweep_seen_txn, now)
        people = await self._roster.school_people(school_ids)
        signed_in = await self._store.run(
            "parta_stats_seen", db.seen_before_txn, [p[2] for p in people], end
        )
        rooms = await self._roster.rooms_of_schools(school_ids)
        room_school = {r.room_id: r.school_id for r in rooms if r.school_id is not None}
        class_chats = {
            r.room_id: r.class_id or ""
            for r in rooms
            if r.kind is RoomKind.CLASS_CHAT and not r.archived
        }
        service = self._module.service_user_id
        messages = await self._store.run(
            "parta_stats_messages", db.messages_txn, sorted(room_school), start, end, service
        )
        week_start = start - (rules.ACTIVE_DAYS - 1) * rules.DAY_MS
        active = await self._store.run(
            "parta_stats_active", db.active_rooms_txn, sorted(class_chats), week_start, end, service
        )
        lessons = await self._module.lessons.held_between(start, end, min(now, end))
        broadcasts = await self._module.broadcasts.created_between(start, end)
        inputs = DayInputs(
            people=people,
            signed_in=frozenset(signed_in),
            room_school=room_school,
            class_chats=class_chats,
            messages=messages,
            active_rooms=active,
            lessons=lessons,
            broadcasts=broadcasts,
        )
        return rules.day_figures(school_ids, inputs)

    # -- the daily job ----------------------------------------------------------------

    async def snapshot(self) -> str:
        """The daily job (run hourly, on the background process): write the rows of every
        day up to yesterday that a school lacks (at most ``CATCH_UP_DAYS`` back, so days
        missed while the server was down are filled in), and today's so far (rewritten
        each run until the day is over)."""
        today = self.today()
        schools = await self._roster.all_schools()
        last = await self._store.run("parta_stats_last_days", db.last_days_txn)
        earliest = today - datetime.timedelta(rules.CATCH_UP_DAYS)
        wanted: dict[datetime.date, list[str]] = defaultdict(list)
        for school in schools:
            created = rules.day_of(school.created_ts, self._tz)
            done = last.get(school.school_id)
            first = max(earliest, created)
            if done is not None:
                first = max(first, datetime.date.fromisoformat(done) + datetime.timedelta(1))
            for day in rules.days(first, today - datetime.timedelta(1)) if first < today else []:
                wanted[day].append(school.school_id)
        written = 0
        for day in sorted(wanted):
            figures = await self.compute_day(wanted[day], day)
            rows = [(s, day.isoformat(), f) for s, f in figures.items()]
            written += await self._store.run(
                "parta_stats_put", db.put_days_txn, rows, _now_ms(), False
            )
        if schools:
            figures = await self.compute_day([s.school_id for s in schools], today)
            rows = [(s, today.isoformat(), f) for s, f in figures.items()]
            await self._store.run("parta_stats_put", db.put_days_txn, rows, _now_ms(), True)
        return f"{written} past day rows, {len(schools)} schools today"


def _figures_json(figures: Figures, messages_per_week: float) -> dict[str, Any]:
    return {
        **{f: getattr(figures, f) for f in rules.FIELDS},
        **rules.derived(figures, messages_per_week),
    }


def _unit_head(unit: dict[str, Any]) -> dict[str, Any]:
    return {"unit_id": unit["unit_id"], "kind": unit["kind"], "name": unit["name"]}


def _school_head(school: School) -> dict[str, Any]:
    return {"unit_id": None, "kind": "school", "name": school.name, "school_id": school.school_id}


def _audited(report: dict[str, Any]) -> dict[str, Any]:
    return {"from": report["from"], "to": report["to"], "schools": len(report["schools"])}
