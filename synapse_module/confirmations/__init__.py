"""Read confirmations: ``api`` (the status and confirm routes, ``Confirmations``),
``callbacks`` (who may ask; reactions in announcements; indexing of requests and
confirmations), ``rules`` (pure), ``store`` (SQL), ``schema`` (its tables' migrations),
``events`` (the content that asks), ``texts``, ``requests.json`` (the confirm body)."""
