"""Widgets of `hub tui`; they post messages and never call the database themselves."""
