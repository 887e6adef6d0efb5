"""Broadcasts: ``api`` (routes and the recorder's callbacks, ``Broadcasts``), ``rules``
(pure), ``store`` (SQL), ``events`` (the broadcast state and the recording it posts),
``texts``, ``requests.json`` (request schemas)."""
