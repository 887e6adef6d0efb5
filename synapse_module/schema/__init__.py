"""Schema areas: one module per feature, each with its ``STEPS`` (see ``store.py``)."""

from collections.abc import Sequence

from synapse_module.schema import content
from synapse_module.store import Step

# area name -> its steps; every feature adds its own line.
AREAS: dict[str, Sequence[Step]] = {
    "content": content.STEPS,
}
