"""What a person reads about roster imports (ids in the catalogue, parta_common/locale)."""

from typing import Final

from parta_common.messages import Message

IMPORT_NOT_FOUND: Final = Message("imports.not_found")
FILES_REJECTED: Final = Message("imports.files_rejected")
BAD_BASE64: Final = Message("imports.bad_base64")
NO_SCHOOL_IN_FILES: Final = Message("imports.no_school_in_files")
SCHOOL_NOT_IN_FILES: Final = Message("imports.school_not_in_files")
SEVERAL_SCHOOLS: Final = Message("imports.several_schools")
NOT_STARTABLE: Final = Message("imports.not_startable")
ANOTHER_RUNNING: Final = Message("imports.another_running")
INTERRUPTED: Final = Message("imports.interrupted")
NO_FREE_NAME: Final = Message("imports.no_free_name")
