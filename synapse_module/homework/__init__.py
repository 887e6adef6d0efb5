"""Homework: ``api`` (routes, ``Homework``), ``callbacks`` (checks and indexes the assignment and
hand-in events), ``rules`` (pure), ``store`` (SQL), ``schema`` (its tables' migrations),
``events`` (the content an assignment is sent with), ``texts``, ``requests.json`` (none: reads
only)."""
