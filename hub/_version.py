"""hub's version and distribution name, declared once (pyproject.toml reads the version from here).

Modules inside hub import these from here, not from the package: hub/__init__.py re-exports
the whole public API, so an import of ``hub`` itself would be an edge back to everything."""

__version__ = "0.1.0"

# The PyPI distribution (`pip install lora-hub-registry`): the name `hub` belongs to another
# project. The import package and the command stay `hub`.
DISTRIBUTION = "lora-hub-registry"
