"""The platform groups, customer service and finance, and what Django's model permissions
give them: reading the courier registry and the gateway accounts."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ("platform_cs", "platform_finance")
READ = ("view_courier", "view_courieraccount")


def create_groups(apps, schema_editor):
    # Permissions are made after every migration has run; make the couriers' ones now.
    couriers = apps.get_app_config("couriers")
    couriers.models_module = True
    create_permissions(couriers, verbosity=0, apps=apps)
    couriers.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    read = Permission.objects.filter(content_type__app_label="couriers", codename__in=READ)
    for name in GROUPS:
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(*read)


class Migration(migrations.Migration):
    dependencies = [
        ("shops", "0001_initial"),
        ("couriers", "0003_courier_accounts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
