from django.db import migrations


def create_head(apps, schema_editor):
    # The single head row exists from the start, so appending never races to create it.
    apps.get_model("sharing", "AuditChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("sharing", "0001_initial")]
    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
