"""Run the SFU with aiortc's codec factories booby-trapped (``python -m tests.sfu_guard``).

If anything in the SFU process ever creates a decoder or an encoder, or starts aiortc's
decoder thread, the process prints why and exits with code 70 at once. Tests run the
real SFU this way and check, after media flowed, that it is still alive.
"""

import os
import sys
from typing import NoReturn

import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender

GUARD_EXIT = 70


def _tripped(what: str) -> NoReturn:
    sys.stderr.write(f"CODEC GUARD: the SFU created {what}\n")
    sys.stderr.flush()
    os._exit(GUARD_EXIT)


def _decoder(*args: object, **kwargs: object) -> NoReturn:
    _tripped("a decoder")


def _encoder(*args: object, **kwargs: object) -> NoReturn:
    _tripped("an encoder")


def _decoder_thread(*args: object, **kwargs: object) -> NoReturn:
    _tripped("aiortc's decoder thread")


def install() -> None:
    aiortc.codecs.get_decoder = _decoder
    aiortc.codecs.get_encoder = _encoder
    aiortc.rtcrtpreceiver.get_decoder = _decoder  # type: ignore[attr-defined]
    aiortc.rtcrtpreceiver.decoder_worker = _decoder_thread
    aiortc.rtcrtpsender.get_encoder = _encoder  # type: ignore[attr-defined]


if __name__ == "__main__":
    install()
    from sfu.__main__ import main

    sys.exit(main(sys.argv[1:]))
