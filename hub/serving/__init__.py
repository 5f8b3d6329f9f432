"""`hub serve`: the registry as a read-only Hugging Face Hub endpoint (repos.py maps the
registry to repos, revisions and files; app.py speaks the HTTP API)."""
