"""The authentication backend: Django's, with the session's user read by one fixed statement.

Every request of a signed-in user loads that user. ``ModelBackend.get_user`` compiles the same
``get(pk=...)`` each time, which costs twice the query itself; a raw query with the model's
columns builds the same user (with the database's converters applied) without compiling.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router


@cache
def _user_sql(alias: str) -> str:
    user_model = get_user_model()
    opts = user_model._meta
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(field.column) for field in opts.concrete_fields)
    return f"SELECT {columns} FROM {quote(opts.db_table)} WHERE {quote(opts.pk.column)} = %s"


class WorkbenchBackend(ModelBackend):
    def get_user(self, user_id):
        # user_id comes from the session already converted by the primary key's to_python.
        user_model = get_user_model()
        alias = router.db_for_read(user_model)
        manager = user_model._default_manager.db_manager(alias)
        users = list(manager.raw(_user_sql(alias), [user_id]))
        if not users:
            return None
        user = users[0]
        return user if self.user_can_authenticate(user) else None
