"""Documents, articles and polls: Parta's content event types (issue 4).

``api`` — the routes (``ContentApi``); ``callbacks`` — what Synapse asks (``Content``:
validation, media checks, indexing; ``PartaModule`` registers it); ``store`` — SQL;
``schema`` — its tables' migrations;
``rules``, ``polls``, ``sniff``, ``sanitize`` — pure decisions (table-tested);
``requests.json`` — request schemas; ``config``, ``texts``.
Nothing is imported here so that ``synapse_module.config`` can import ``content.config``.
"""
