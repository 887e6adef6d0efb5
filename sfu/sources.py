"""What a participant publishes: camera, microphone, screen."""

import enum

import attrs


class Source(enum.StrEnum):
    CAMERA = "camera"
    MICROPHONE = "microphone"
    SCREEN = "screen"

    @property
    def kind(self) -> str:
        return "audio" if self is Source.MICROPHONE else "video"


@attrs.frozen
class StreamKey:
    participant_id: str
    source: Source
