"""The bucket-wide search index."""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.models.functions import Upper

# The substring index on keys differs by database (sharing/selectors/search.py asks each its way):
# PostgreSQL: a pg_trgm GIN index on UPPER(key), the expression Django's `icontains` compares;
# SQLite: an FTS5 table with the trigram tokenizer over the keys (external content: the keys
# are stored once, in the table itself), kept in step by triggers.
PG_INDEX = GinIndex(OpClass(Upper("key"), name="gin_trgm_ops"), name="index_key_trigram")
FTS = "sharing_indexedobject_trigram"
SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE sharing_indexedobject_trigram USING fts5(key, "
    "content='sharing_indexedobject', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER sharing_indexedobject_trigram_insert AFTER INSERT ON sharing_indexedobject "
    "BEGIN INSERT INTO sharing_indexedobject_trigram(rowid, key) VALUES (new.id, new.key); END",
    "CREATE TRIGGER sharing_indexedobject_trigram_delete AFTER DELETE ON sharing_indexedobject "
    "BEGIN INSERT INTO sharing_indexedobject_trigram(sharing_indexedobject_trigram, rowid, key) "
    "VALUES ('delete', old.id, old.key); END",
    # Only a changed key touches the trigrams: a walk's upsert rewrites size, dates and seen_at.
    "CREATE TRIGGER sharing_indexedobject_trigram_update AFTER UPDATE OF key "
    "ON sharing_indexedobject BEGIN "
    "INSERT INTO sharing_indexedobject_trigram(sharing_indexedobject_trigram, rowid, key) "
    "VALUES ('delete', old.id, old.key); "
    "INSERT INTO sharing_indexedobject_trigram(rowid, key) VALUES (new.id, new.key); END",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {FTS}_insert",
    f"DROP TRIGGER IF EXISTS {FTS}_delete",
    f"DROP TRIGGER IF EXISTS {FTS}_update",
    f"DROP TABLE IF EXISTS {FTS}",
]


class TrigramExtensionKept(TrigramExtension):
    """pg_trgm, created when missing (nothing on other databases), and kept when unapplied.

    Django's CreateExtension drops it on the way back, and asks pg_extension even on SQLite."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        pass


def create_substring_index(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.add_index(apps.get_model("sharing", "IndexedObject"), PG_INDEX)
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement)


def drop_substring_index(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("sharing", "IndexedObject"), PG_INDEX)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("sharing", "0011_folder_jobs")]

    operations = [
        migrations.CreateModel(
            name="BucketIndex",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.CharField(max_length=63, unique=True)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("idle", "Idle"),
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("failed", "Failed"),
                        ],
                        default="idle",
                        max_length=10,
                    ),
                ),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("walk_started_at", models.DateTimeField(blank=True, null=True)),
                ("progress_at", models.DateTimeField(blank=True, null=True)),
                ("walk_finished_at", models.DateTimeField(blank=True, null=True)),
                ("files", models.BigIntegerField(default=0)),
                ("error", models.CharField(blank=True, max_length=500)),
            ],
            options={"verbose_name_plural": "bucket indexes"},
        ),
        migrations.CreateModel(
            name="IndexedObject",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bucket", models.CharField(max_length=63)),
                ("key", models.CharField(max_length=1024)),
                ("size", models.BigIntegerField(default=0)),
                ("last_modified", models.DateTimeField()),
                ("content_type", models.CharField(blank=True, max_length=255)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("folder", "Folder"),
                            ("image", "Image"),
                            ("video", "Video"),
                            ("audio", "Audio"),
                            ("pdf", "PDF"),
                            ("text", "Text"),
                            ("document", "Document"),
                            ("spreadsheet", "Spreadsheet"),
                            ("presentation", "Presentation"),
                            ("archive", "Archive"),
                            ("other", "Other"),
                        ],
                        default="other",
                        max_length=12,
                    ),
                ),
                ("etag", models.CharField(blank=True, max_length=100)),
                ("seen_at", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("bucket", "key"), name="index_one_row_per_key")
                ]
            },
        ),
        TrigramExtensionKept(),
        migrations.RunPython(create_substring_index, drop_substring_index),
    ]
