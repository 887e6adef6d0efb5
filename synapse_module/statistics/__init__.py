"""Statistics of schools, municipalities and regions (issue 11): ``api`` (routes,
``Statistics``, the daily job), ``rules`` (pure: days, figures, totals, shares),
``store`` (snapshot rows, sign-in journal, counts from Synapse's tables), ``workbook``
(the XLSX), ``texts``."""
