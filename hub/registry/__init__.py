"""The registry: SQLAlchemy Core tables, Alembic migrations, content-addressed store.

Core (not the ORM) keeps cold start of reading commands low; the schema is the
same on SQLite and PostgreSQL.
"""
