"""Long lists of values sent to PostgreSQL as one array parameter.

Django binds parameters on the client with psycopg, which costs tens of microseconds per
placeholder here: an ``IN`` of 200 ids or a ``VALUES`` list of 1,000 parameters spends more time
being bound than being run. A whole list written as one array literal is one parameter, bound in
microseconds, and ``= ANY(...)`` / ``unnest(...)`` read it on the server.

``field__any=[...]`` is the lookup form: ``= ANY(%s::<type>[])`` on PostgreSQL, a plain ``IN``
elsewhere (the embedded SQLite default).
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import models
from django.db.models import Lookup


def _element(value) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # Every element quoted, backslashes and quotes escaped: any text is safe inside the literal.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable) -> str:
    """A PostgreSQL array literal of ``values`` (None for NULL), to bind as one text parameter.

    A batch of scans sends a few thousand values at a time, so the common columns skip the call
    per element: integers and times need no quoting (their text has no quote, comma, brace or
    space), and a column of texts is escaped in one pass over the joined column. PostgreSQL text
    cannot hold NUL, so NUL separates the texts during that pass.
    """
    values = values if isinstance(values, list) else list(values)
    if not values:
        return "{}"
    kinds = set(map(type, values))
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {datetime}:
        return "{" + ",".join(map(datetime.isoformat, values)) + "}"
    if all(issubclass(kind, str) for kind in kinds):  # str, and choices such as stages
        joined = "\x00".join(values)
        if joined.count("\x00") == len(values) - 1:
            escaped = joined.replace("\\", "\\\\").replace('"', '\\"')
            return '{"' + escaped.replace("\x00", '","') + '"}'
    return "{" + ",".join(map(_element, values)) + "}"


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [value]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection) for value in self.rhs]
        if connection.vendor == "postgresql":
            db_type = (
                field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
            )
            return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, array_literal(values)]
        if not values:
            return "1 = 0", []
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


def register_lookups() -> None:
    """Called once the app registry is ready (``InterceptsConfig.ready``)."""
    for field in (models.BigAutoField, models.ForeignKey, models.CharField):
        field.register_lookup(AnyOf)
