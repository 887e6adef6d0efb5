"""The ``content:`` section of the module's configuration (documents, articles, polls)."""

import attrs

MIB = 1024 * 1024


@attrs.frozen
class UploadLimits:
    """Largest upload, in MiB, per kind of file."""

    # PDFs, office files, archives, text: everything that is neither video nor image.
    document_mib: int = 100
    # Video and audio.
    video_mib: int = 2048
    image_mib: int = 30

    def __attrs_post_init__(self) -> None:
        for name in ("document_mib", "video_mib", "image_mib"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1 (MiB)")

    def bytes_for(self, kind: str) -> int:
        mib: int = getattr(self, f"{kind}_mib")
        return mib * MIB

    def largest_bytes(self) -> int:
        return max(self.document_mib, self.video_mib, self.image_mib) * MIB


@attrs.frozen
class ContentConfig:
    """Documents, articles and polls."""

    # Limits for administrators, coordinators and teachers.
    staff_uploads: UploadLimits = attrs.field(factory=UploadLimits)
    # Limits for students, parents and people outside any school.
    student_uploads: UploadLimits = attrs.field(
        factory=lambda: UploadLimits(document_mib=20, video_mib=200, image_mib=10)
    )
    # Whether students may start polls in school rooms (teachers and administrators may).
    students_may_start_polls: bool = False
    # The Synapse worker that indexes documents, articles and votes; null = main process.
    indexer_worker: str | None = None

    def largest_upload_bytes(self) -> int:
        """What homeserver.yaml's ``max_upload_size`` must be at least."""
        return max(self.staff_uploads.largest_bytes(), self.student_uploads.largest_bytes())


def largest_upload_mib(raw_module_config: object) -> int:
    """``max_upload_size`` (MiB) for a module config as written in homeserver.yaml."""
    from parta_common.config import build

    raw = raw_module_config.get("content", {}) if isinstance(raw_module_config, dict) else {}
    config = build(ContentConfig, raw or {}, ("content",))
    return config.largest_upload_bytes() // MIB
