"""Read confirmations: ``api`` (the status route, ``Confirmations``), ``callbacks`` (who may ask;
indexing of requests and confirmations), ``rules`` (pure), ``store`` (SQL), ``schema`` (its
tables' migrations), ``events`` (the content that asks), ``texts``, ``requests.json`` (none)."""
