"""Tools to run Parta on one machine: config generation, process supervision, test users.

Used by ``make run`` (``python -m devtools.run``), by the test harness and by ``bench/``.
"""
