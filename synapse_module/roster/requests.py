"""The roster's request schemas, read from ``requests.json`` beside this module."""

from typing import Any, Final

from ..requests import request_schemas

REQUEST_SCHEMAS: Final = request_schemas(__package__)

CREATE_SCHOOL_SCHEMA: Final = REQUEST_SCHEMAS["CreateSchool"]
PATCH_SCHOOL_SCHEMA: Final = REQUEST_SCHEMAS["PatchSchool"]
CREATE_CLASS_SCHEMA: Final = REQUEST_SCHEMAS["CreateClass"]
PUT_MEMBER_SCHEMA: Final = REQUEST_SCHEMAS["PutMember"]
BATCH_MEMBERS_SCHEMA: Final = REQUEST_SCHEMAS["BatchMembers"]
CREATE_INVITE_SCHEMA: Final = REQUEST_SCHEMAS["CreateInvite"]
REGISTER_SCHEMA: Final = REQUEST_SCHEMAS["Register"]
UNIT_SCHEMA: Final = REQUEST_SCHEMAS["CreateUnit"]
PARENT_INVITE_SCHEMA: Final = REQUEST_SCHEMAS["ParentInvite"]
DISPLAY_NAME_SCHEMA: Final = REQUEST_SCHEMAS["DisplayName"]
NEW_COORDINATOR_SCHEMA: Final = REQUEST_SCHEMAS["NewCoordinator"]
NEW_MEMBER_SCHEMA: Final = REQUEST_SCHEMAS["NewMember"]
# A Matrix user ID, as the routes check path parameters.
USER_ID_SCHEMA: Final[dict[str, Any]] = PUT_MEMBER_SCHEMA["properties"]["children"]["items"]
