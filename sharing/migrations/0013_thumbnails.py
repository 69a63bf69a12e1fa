"""The thumbnail records."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sharing", "0012_object_index")]

    operations = [
        migrations.CreateModel(
            name="Thumbnail",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.CharField(max_length=63)),
                ("key", models.CharField(max_length=1024)),
                ("version", models.CharField(max_length=200)),
                ("source_size", models.BigIntegerField(default=0)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("ready", "Ready"),
                            ("skipped", "Skipped (too large)"),
                            ("refused", "Refused (too many pixels)"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=500)),
                ("storage_name", models.CharField(blank=True, max_length=300)),
                ("width", models.PositiveIntegerField(blank=True, null=True)),
                ("height", models.PositiveIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("bucket", "key"), name="thumbnail_one_per_key")
                ],
            },
        ),
    ]
