"""The roster: schools, classes, members, invitations, sign-in codes, parent links,
units and their coordinators.

- ``api`` — the routes (``Roster``), with their handlers in ``units``, ``schools``,
  ``classes``, ``members``, ``invites``, ``sign_in``, ``me``, ``parent_links``;
- ``callbacks`` — what Synapse asks (``PartaModule`` registers them, in its order);
- ``core`` — cached look-ups and the interface other features use;
- ``rules`` — every decision as a pure function (table-tested);
- ``store`` — SQL transactions; only the roster reads its tables;
- ``schema`` — its tables' migrations (area ``roster``);
- ``events`` — the rooms and the state the roster sends into them;
- ``requests.json`` — request schemas (validator and OpenAPI read the same file),
  ``requests`` the names the handlers use.
"""
