"""The apps' order holds for migrations as well as imports (``lint-imports`` checks imports)."""

from django.db.migrations.loader import MigrationLoader

ORDER = ["couriers", "shops", "billing", "intercepts", "claims"]


def test_each_apps_migrations_depend_only_on_apps_below_it():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    upward = []
    for (app, name), migration in loader.disk_migrations.items():
        if app not in ORDER:
            continue
        for dependency_app, _dependency in migration.dependencies:
            if dependency_app in ORDER and ORDER.index(dependency_app) > ORDER.index(app):
                upward.append(f"{app}.{name} -> {dependency_app}")
    assert upward == []


def test_each_apps_foreign_keys_point_only_at_apps_below_it():
    from django.apps import apps

    upward = []
    for model in apps.get_models():
        app = model._meta.app_label
        if app not in ORDER:
            continue
        for field in model._meta.get_fields():
            target = getattr(field, "related_model", None)
            if not field.concrete or target is None:
                continue
            target_app = target._meta.app_label
            if target_app in ORDER and ORDER.index(target_app) > ORDER.index(app):
                upward.append(f"{model._meta.label}.{field.name} -> {target._meta.label}")
    assert upward == []
