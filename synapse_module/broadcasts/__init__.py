"""Broadcasts: ``api`` (routes and the recorder's callbacks, ``Broadcasts``), ``rules`` (pure),
``store`` (SQL), ``schema`` (its tables' migrations), ``events`` (the broadcast state and the
recording it posts), ``texts``, ``requests.json`` (request schemas)."""
