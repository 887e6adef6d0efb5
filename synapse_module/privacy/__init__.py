"""Privacy (issue 12): the audit log's verification and export; consents (to come)."""
