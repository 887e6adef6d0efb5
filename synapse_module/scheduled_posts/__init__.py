"""Posts the school bot sends later as their author, exactly once: ``api`` (routes,
``ScheduledPosts``), ``rules`` (pure: who may send one), ``store`` (SQL), ``schema`` (its
tables' migrations, area ``scheduled_posts``), ``events`` (the message it sends, and finding it
again), ``texts``, ``requests.json`` (request schemas)."""
