"""Privacy's routes: the audit log's check (operator) and a school's export (inspector).

* ``GET /audit/verify`` — the server operator: is the hash chain whole, and if not, the
  first broken entry (the same report as ``python -m synapse_module.privacy.verify``);
* ``GET /schools/{schoolId}/audit?format=json|csv`` — the school's administrators, its
  unit's coordinators and the operator: every entry about the school, for an inspector.
  The export is itself a read of personal data, so it is audited first.
"""

import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from .. import audit
from ..errors import forbidden
from ..http import requester_id
from ..query import query_choice
from ..requests import request_schemas
from .rules import entries_csv, entry_json, verify_report
from .texts import VERIFY_OPERATOR_ONLY

if TYPE_CHECKING:
    from .. import PartaModule

REQUEST_SCHEMAS: Final = request_schemas(__package__)


class Privacy:
    ROUTES: Final = (
        ("GET", r"/audit/verify", "get_audit_verify"),
        ("GET", r"/schools/([^/]+)/audit", "get_school_audit"),
    )

    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api
        # Chain each entry right after the transaction that wrote it commits.
        audit.on_append(self._seal_soon)

    def _seal_soon(self) -> None:
        self._api.run_as_background_process("parta_audit_seal", self.seal)

    async def seal(self) -> str:
        """Chain the entries not chained yet (also the background job ``audit_seal``)."""
        sealed = await self._module.store.run_read_committed("parta_audit_seal", audit.seal_txn)
        return f"chained {sealed}"

    async def get_audit_verify(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._api, request)
        if not await self._module.roster._is_operator(user_id):
            raise forbidden(VERIFY_OPERATOR_ONLY)
        await self.seal()
        entries, head, pending = await self._module.store.run("parta_audit_chain", audit.chain_txn)
        return 200, verify_report(entries, head, pending)

    async def get_school_audit(
        self, request: SynapseRequest, school_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        user_id, school = await self._module.roster._open(request, school_id, "manager")

        def record_txn(txn: Any) -> None:
            # The read is recorded before it is made.
            audit.append_txn(
                txn,
                int(time.time() * 1000),
                user_id,
                "audit.export",
                school.school_id,
                school.school_id,
                {"format": fmt},
            )

        await self._module.store.run("parta_audit_export", record_txn)
        await self.seal()  # the export shows every entry chained, its own record too
        entries = await self._module.store.run(
            "parta_school_audit", audit.school_entries_txn, school.school_id
        )
        if fmt == "json":
            return 200, {
                "school_id": school.school_id,
                "entries": [entry_json(e) for e in entries],
            }
        data = entries_csv(entries).encode("utf-8")
        disposition = f'attachment; filename="audit-{school.school_id}.csv"'.encode("ascii")
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/csv; charset=utf-8")  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Disposition", disposition)  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))  # type: ignore[no-untyped-call]
        request.write(data)  # type: ignore[no-untyped-call]
        request.finish()
        return None
