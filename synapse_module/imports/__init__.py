"""Roster imports through the module's API: the console's OneRoster import, planned by the
same planner as the bot's and applied through the roster's own member routes."""
