"""Names for the fixed SQL statements on hot paths, always taken from the models.

A few reads run on every workbench page as plain statements instead of ORM queries compiled
per request; their table and column names still come from the models, so a renamed column
or table cannot leave a statement behind.
"""

from django.db import connection


def table(model) -> str:
    """The model's table, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model, field_name: str, table_alias: str = "") -> str:
    """The column of ``model.field_name``, quoted, and qualified by ``table_alias`` if given."""
    quoted = connection.ops.quote_name(model._meta.get_field(field_name).column)
    return f"{table_alias}.{quoted}" if table_alias else quoted


def columns(model, field_names: str, table_alias: str = "") -> str:
    """Several columns (names separated by spaces), comma separated."""
    return ", ".join(column(model, name, table_alias) for name in field_names.split())
