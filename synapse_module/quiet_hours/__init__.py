"""Quiet hours: ``api`` (the held-messages route and the morning delivery,
``QuietHoursFeature``), ``callbacks`` (``check_event_allowed``: hold, or let an urgent
one through), ``rules`` (pure), ``store`` (SQL, area ``quiet_hours``), ``schema`` (its
table's migrations), ``texts``, ``requests.json`` (none: the route is a GET)."""
