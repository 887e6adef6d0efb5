"""Documents, articles and polls: Parta's content event types (issue 4).

``feature.Content`` registers the callbacks and routes; the other modules here are pure
(``limits``, ``sniff``, ``sanitize``, ``polls``, ``access``) or storage (``store``).
Nothing is imported here so that ``synapse_module.config`` can import ``content.config``.
"""
