"""Screens of `hub tui`: the main browser and one dialog per action."""
