"""Audit rows get a keyed MAC when written and a place in the chain when sealed; the chain head
that every append locked gives way to the seal row that only sealers lock."""

from django.db import migrations, models
from django.db.models import Q

GENESIS_HASH = "0" * 64


def mac_existing_rows(apps, schema_editor):
    # Rows written before this migration were hash-chained; from now on each carries a MAC and
    # the sealer chains them again, in id order, the next time it runs.
    from sharing.audit.trail import row_mac

    AuditEvent = apps.get_model("sharing", "AuditEvent")
    batch = []
    for row in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        row.mac, row.prev_hash, row.hash = row_mac(row), "", ""
        batch.append(row)
        if len(batch) == 2000:
            AuditEvent.objects.bulk_update(batch, ["mac", "prev_hash", "hash"])
            batch = []
    AuditEvent.objects.bulk_update(batch, ["mac", "prev_hash", "hash"])
    apps.get_model("sharing", "AuditSeal").objects.get_or_create(
        pk=1, defaults={"hash": GENESIS_HASH}
    )


class Migration(migrations.Migration):
    dependencies = [("sharing", "0005_audit_rows_outlive_users")]

    operations = [
        migrations.DeleteModel(name="AuditChainHead"),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=Q(seq__isnull=True), fields=["id"], name="audit_unsealed"),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                condition=Q(seq__isnull=False), fields=["seq"], name="audit_one_row_per_seq"
            ),
        ),
        migrations.RunPython(mac_existing_rows, migrations.RunPython.noop),
    ]
