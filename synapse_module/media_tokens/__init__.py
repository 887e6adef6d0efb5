"""Media tokens: ``api`` (routes, ``MediaTokens``), ``rules`` (pure: room IDs from paths,
LiveKit names and tokens), ``texts``, ``requests.json`` (request schemas). Stateless: no
store, nothing sent into rooms."""
