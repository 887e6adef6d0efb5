"""Privacy (issue 12): ``api`` (routes, ``Privacy``: the audit log's verification and
export, consents), ``rules`` (pure), ``verify`` (the hash chain, also a CLI), ``store``
(SQL), ``schema`` (its tables' migrations), ``texts``, ``requests.json`` (request schemas).
The audit log itself is written through :mod:`synapse_module.audit` by every feature."""
