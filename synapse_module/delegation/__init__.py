"""The school bot acting for a person, only on that person's own recent command: ``rules``
(pure: :func:`~.rules.command_refusal`), ``store`` (the command's event, read from
Synapse's tables), ``api`` (``Delegation``: resolves the headers for
:func:`synapse_module.http.requester_id`), ``texts``. Cross-cutting request auth, not a
feature: no routes, no tables of its own (refusals go to the roster's audit log)."""
