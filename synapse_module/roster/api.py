"""The roster's REST API: which path goes to which handler. The handlers live in the
sub-modules by subject (units, schools, classes, members, people appointed by name,
invites, sign-in codes, ``/me``, parent links); the callbacks Synapse calls are in ``callbacks``."""

import logging
from typing import TYPE_CHECKING, Final

from .accounts import AccountsApi
from .callbacks import RosterCallbacks
from .classes import ClassesApi
from .core import FIRST_SIGN_IN_CONCURRENCY, OPEN_ROOMS_CONCURRENCY
from .first_sign_in import FirstSignInQueue
from .me import MeApi
from .parent_links import ParentLinks
from .sign_in import SignInApi

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)


class Roster(AccountsApi, ClassesApi, MeApi, SignInApi, RosterCallbacks):
    """The school model: API under ``/schools``, ``/units``, ``/invites``, ``/me``."""

    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("GET", "/me", "get_me"),
        ("POST", "/me/parent_invite", "post_parent_invite"),
        ("POST", "/units", "post_unit"),
        ("GET", "/units", "get_units"),
        ("GET", "/units/([^/]+)", "get_unit"),
        ("POST", "/units/([^/]+)/coordinators", "post_coordinator"),
        ("PUT", "/units/([^/]+)/coordinators/([^/]+)", "put_coordinator"),
        ("DELETE", "/units/([^/]+)/coordinators/([^/]+)", "delete_coordinator"),
        (
            "POST",
            "/units/([^/]+)/coordinators/([^/]+)/sign_in_code",
            "post_coordinator_sign_in_code",
        ),
        ("POST", "/schools", "post_school"),
        ("GET", "/schools", "get_schools"),
        ("GET", "/schools/by_external_id/([^/]+)", "get_school_by_external_id"),
        ("GET", "/schools/([^/]+)", "get_school"),
        ("PATCH", "/schools/([^/]+)", "patch_school"),
        ("POST", "/schools/([^/]+)/classes", "post_class"),
        ("GET", "/schools/([^/]+)/classes", "get_classes"),
        ("GET", "/schools/([^/]+)/classes/([^/]+)", "get_class"),
        ("POST", "/schools/([^/]+)/classes/([^/]+)/archive", "post_archive"),
        ("GET", "/schools/([^/]+)/members", "get_members"),
        ("POST", "/schools/([^/]+)/members", "post_member"),
        ("POST", "/schools/([^/]+)/members/batch", "post_members_batch"),
        ("PUT", "/schools/([^/]+)/members/([^/]+)", "put_member"),
        ("DELETE", "/schools/([^/]+)/members/([^/]+)", "delete_member"),
        ("POST", "/schools/([^/]+)/members/([^/]+)/sign_in_code", "post_sign_in_code"),
        ("PUT", "/schools/([^/]+)/members/([^/]+)/display_name", "put_display_name"),
        ("POST", "/schools/([^/]+)/invites", "post_invite"),
        ("GET", "/schools/([^/]+)/invites", "get_invites"),
        ("DELETE", "/schools/([^/]+)/invites/([^/]+)", "delete_invite"),
        ("GET", "/invites/([^/]+)", "get_invite"),
        ("POST", "/invites/([^/]+)/redeem", "post_redeem"),
        ("POST", "/invites/([^/]+)/register", "post_register"),
    )

    def __init__(self, module: "PartaModule"):
        super().__init__(module)
        # Parent links from a student's own code wait for the school (issue 17).
        self.parent_links = ParentLinks(self)
        # First sign-ins: the login answers at once, the rooms are joined behind it.
        self.first_sign_ins = FirstSignInQueue(
            self.api, self._join_first_sign_in, FIRST_SIGN_IN_CONCURRENCY
        )
        # People imported before signing in: their school-wide rooms, in the background.
        self.open_room_joins = FirstSignInQueue(
            self.api, self._join_open_rooms, OPEN_ROOMS_CONCURRENCY, "parta_open_room_joins"
        )
        if self.api.should_run_background_tasks():
            self.api.delayed_background_call(0, self._start_up, desc="parta_roster_start_up")

    async def _start_up(self) -> None:
        """Open older schools' school-wide rooms, then resume the first sign-ins a
        restart interrupted (their joins then go straight into open rooms)."""
        try:
            await self._open_school_wide_rooms()
        except Exception:
            # Joins still work (an invitation first); the next start-up tries again.
            logger.exception("Could not open the school-wide rooms of older schools")
        await self._resume_first_sign_ins()
