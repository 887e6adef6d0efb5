"""Video lessons: ``api`` (routes, ``Lessons``), ``rules`` (pure: statuses, attendance summary),
``store`` (SQL), ``schema`` (its tables' migrations), ``events`` (the lesson state, widget and
notice it sends), ``texts``, ``requests.json`` (request schemas)."""
