"""The folder job records (copy, move, delete run as tasks)."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0010_folder_links_tracking_requests"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FolderJob",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("copy", "Copy"), ("move", "Move"), ("delete", "Delete")],
                        max_length=10,
                    ),
                ),
                ("actor_name", models.CharField(blank=True, max_length=150)),
                ("client_ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("bucket", models.CharField(max_length=63)),
                ("prefix", models.CharField(blank=True, max_length=1024)),
                ("sources", models.JSONField(default=list)),
                ("dst_bucket", models.CharField(blank=True, max_length=63)),
                ("dst_prefix", models.CharField(blank=True, max_length=1024)),
                ("overwrite", models.BooleanField(default=False)),
                ("task_id", models.CharField(blank=True, max_length=64)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "Waiting to start"),
                            ("running", "Running"),
                            ("stopped", "Stopped"),
                            ("done", "Done"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("planned", models.PositiveIntegerField(default=0)),
                ("done", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                ("cursor", models.CharField(blank=True, max_length=1024)),
                ("walked", models.BooleanField(default=False)),
                ("pending", models.JSONField(blank=True, default=list)),
                ("failures", models.JSONField(blank=True, default=list)),
                ("message", models.TextField(blank=True)),
                (
                    "user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="folder_jobs",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["user", "-created_at"], name="folderjob_user_recent"),
                    models.Index(
                        fields=["state", "heartbeat_at"], name="folderjob_state_heartbeat"
                    ),
                ],
            },
        ),
    ]
