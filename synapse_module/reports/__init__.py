"""Reports reach the school: ``api`` (``Reports``: reads Synapse's reports and forwards them),
``rules`` (pure: where a report goes, what is quoted), ``store`` (SQL), ``schema`` (its tables'
migrations), ``events`` (the complaints rooms, the forwarded report, the reporter's
confirmation), ``texts``, ``requests.json`` (no requests yet)."""
