"""What a listing is, without SQL: the filter and its language (filters.py, query.py), the
browser's row type and sort keys (rows.py) and its in-memory index (index.py). The
registry runs these as SQL (hub.registry.adapters, hub.registry.browse); front-ends import
them from here, never from hub.registry."""
