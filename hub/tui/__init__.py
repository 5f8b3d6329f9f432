"""`hub tui`: a Textual front-end over the same service API as the CLI.

Build one with :func:`hub.tui.app.create_app` (tests reuse it).
"""
