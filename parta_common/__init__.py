"""What every part of Parta agrees on: event types, roles, token claims, messages.

Pure Python with no dependency on Synapse, aiortc or mautrix, so the module (inside
Synapse's virtualenv), the SFU and the bridge can all import it.
"""

__version__ = "0.1.0"
