import datetime
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When


class Role(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    MANAGE = "manage", "Manage"

    @classmethod
    def at_least(cls, role: str) -> list[str]:
        """Return the roles that include `role` (read < write < manage)."""
        order = list(cls.values)
        return order[order.index(role) :]


# Handing out access to a file needs write: readers cannot (permissions.py holds the full table).
SHARE_ROLE = Role.WRITE


class BucketGrantQuerySet(models.QuerySet):
    def reaching(self, user) -> "BucketGrantQuerySet":
        """Return the grants a user holds, directly or through a group (user may be an OuterRef)."""
        return self.filter(Q(user=user) | Q(group__user=user))


class BucketGrant(models.Model):
    """A user's or a group's role on one bucket."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="bucket_grants"
    )
    bucket = models.CharField(max_length=63, db_index=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.READ)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BucketGrantQuerySet.as_manager()

    class Meta:
        ordering = ["bucket", "role"]
        permissions = [("create_bucket", "Can create buckets")]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="grant_user_xor_group",
            ),
            models.UniqueConstraint(fields=["user", "bucket"], name="one_grant_per_user_bucket"),
            models.UniqueConstraint(fields=["group", "bucket"], name="one_grant_per_group_bucket"),
        ]

    def __str__(self) -> str:
        holder = self.user or f"group {self.group}"
        return f"{holder}: {self.role} on {self.bucket}"


class BucketSettings(models.Model):
    """What the portal itself allows in one bucket, whatever the storage would allow."""

    bucket = models.CharField(max_length=63, unique=True)
    public_files = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "bucket settings"

    def __str__(self) -> str:
        return f"{self.bucket}: public files {'allowed' if self.public_files else 'not allowed'}"


class FileKind(models.TextChoices):
    """What a file is, from its content type or its name's extension (search filters by it)."""

    FOLDER = "folder", "Folder"
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"
    PDF = "pdf", "PDF"
    TEXT = "text", "Text"
    DOCUMENT = "document", "Document"
    SPREADSHEET = "spreadsheet", "Spreadsheet"
    PRESENTATION = "presentation", "Presentation"
    ARCHIVE = "archive", "Archive"
    OTHER = "other", "Other"


class IndexedObject(models.Model):
    """One object of a bucket as the search index knows it (sharing/services/search_index.py).

    The substring index on `key` is database-specific and made by migration 0012: a pg_trgm GIN
    index on PostgreSQL, an FTS5 trigram table kept in step by triggers on SQLite."""

    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    size = models.BigIntegerField(default=0)
    last_modified = models.DateTimeField()
    content_type = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=12, choices=FileKind.choices, default=FileKind.OTHER)
    etag = models.CharField(max_length=100, blank=True)
    # When a walk (or a portal write) last saw the object: a walk drops the rows it did not see.
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "key"], name="index_one_row_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key}"


class IndexState(models.TextChoices):
    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"


class BucketIndex(models.Model):
    """How fresh a bucket's search index is: its walks of the whole bucket, and their state."""

    bucket = models.CharField(max_length=63, unique=True)
    state = models.CharField(max_length=10, choices=IndexState.choices, default=IndexState.IDLE)
    requested_at = models.DateTimeField(null=True, blank=True)
    walk_started_at = models.DateTimeField(null=True, blank=True)
    # A running walk touches this after each page: a walk that stopped touching it has died.
    progress_at = models.DateTimeField(null=True, blank=True)
    walk_finished_at = models.DateTimeField(null=True, blank=True)
    files = models.BigIntegerField(default=0)  # counted by the last finished walk
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "bucket indexes"

    def __str__(self) -> str:
        return f"{self.bucket}: index {self.state}"


class Outcome(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"
    # Refused input (a bad name, expiry or address): nothing was asked of S3; DENIED is for
    # who may not act at all, FAILURE for an action that was tried and failed.
    REFUSED = "refused", "Refused"
    UNKNOWN = "unknown", "Unknown (never completed)"


class Phase(models.TextChoices):
    INTENT = "intent", "Intent"
    OUTCOME = "outcome", "Outcome"
    EVENT = "event", "Event"


class AuditEvent(models.Model):
    """One append-only row of the audit trail; written only by sharing.audit."""

    created_at = models.DateTimeField(db_index=True)
    # No index of its own: only audit_reconcile looks rows up by operation, rarely, and every
    # index is one more page written by each append (the hot path of every request).
    operation = models.UUIDField(default=uuid.uuid4, editable=False)
    phase = models.CharField(max_length=10, choices=Phase.choices)
    # Rows outlive their users unchanged (SET_NULL would rewrite hashed rows and break the chain);
    # no index: nothing looks rows up by user id, and every index costs each append.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    actor_name = models.CharField(max_length=150, blank=True)  # indexed first in audit_actor_id
    action = models.CharField(max_length=40, db_index=True)
    bucket = models.CharField(max_length=63, blank=True)  # indexed first in audit_bucket_id
    key = models.CharField(max_length=1024, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, db_index=True)
    error_code = models.CharField(max_length=100, blank=True)
    message = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # A keyed MAC of the fields above, from the moment the row is written (sharing/audit/trail.py).
    mac = models.CharField(max_length=64, editable=False)
    # Filled in by the sealer: the row's place in the chain, the previous sealed row's hash, its own.
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The admin's filters by bucket and by actor, newest first, without a sort.
            models.Index(fields=["bucket", "-id"], name="audit_bucket_id"),
            models.Index(fields=["actor_name", "-id"], name="audit_actor_id"),
            # The sealer's queue: only unsealed rows are in it, so it stays small.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsealed"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["seq"], condition=Q(seq__isnull=False), name="audit_one_row_per_seq"
            )
        ]

    def __str__(self) -> str:
        target = "/".join(part for part in (self.bucket, self.key) if part)
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {target} {self.outcome}"


class AuditSeal(models.Model):
    """The newest sealed audit row's position and hash; the row a sealer locks while it seals."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit sealed up to #{self.seq}"


class Acl(models.TextChoices):
    PRIVATE = "private", "Private"
    PUBLIC_READ = "public-read", "Public (anyone with the URL)"


class PendingUpload(models.Model):
    """A multipart upload the portal started: only the person who started it may sign its parts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    upload_id = models.CharField(max_length=512, unique=True)
    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    # The person who started it, or None for an outsider's upload through a file request,
    # whose `visit` then owns it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    visit = models.ForeignKey(
        "FileRequestVisit",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pending_uploads",
    )
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=255, blank=True)
    acl = models.CharField(max_length=20, choices=Acl.choices, default=Acl.PRIVATE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key} ({self.size} bytes)"


class LinkStatus(models.TextChoices):
    """Whether a share link may be used, or the first reason it may not."""

    ACTIVE = "active", "active"
    REVOKED = "revoked", "revoked"
    FILE_DELETED = "file deleted", "file deleted"
    EXPIRED = "expired", "expired"
    USED_UP = "used up", "used up"
    DISABLED = "disabled", "disabled"


class LinkKind(models.TextChoices):
    """What a share link gives: one file, a folder (as it is at each visit), or chosen files."""

    FILE = "file", "file"
    FOLDER = "folder", "folder"
    SELECTION = "selection", "selection"


class ShareLinkQuerySet(models.QuerySet):
    """The one definition of a usable link; every page, count and filter asks it."""

    def with_status(self, now: datetime.datetime) -> "ShareLinkQuerySet":
        """Annotate each link with `status`: active, or the first reason it cannot be used."""
        # Subqueries rather than joins, so that an UPDATE filtered on the status stays one
        # statement whose conditions the database re-checks on the row it changes.
        creator_may_share = get_user_model().objects.filter(
            Q(is_superuser=True)
            | Exists(
                BucketGrant.objects.reaching(OuterRef("pk")).filter(
                    bucket=OuterRef(OuterRef("bucket")), role__in=Role.at_least(SHARE_ROLE)
                )
            ),
            pk=OuterRef("creator_id"),
            is_active=True,
        )
        reasons = [
            (LinkStatus.REVOKED, Q(revoked_at__isnull=False)),
            (LinkStatus.FILE_DELETED, Q(file_deleted_at__isnull=False)),
            (LinkStatus.EXPIRED, Q(expires_at__lte=now)),
            (LinkStatus.USED_UP, Q(max_downloads__isnull=False, downloads__gte=F("max_downloads"))),
            (LinkStatus.DISABLED, ~Exists(creator_may_share)),
        ]
        status = Case(
            *[When(condition, then=Value(reason)) for reason, condition in reasons],
            default=Value(LinkStatus.ACTIVE),
            output_field=models.CharField(),
        )
        return self.annotate(status=status)

    def usable(self, now: datetime.datetime) -> "ShareLinkQuerySet":
        """Return the links that may be opened and downloaded now."""
        return self.with_status(now).filter(status=LinkStatus.ACTIVE)


class ShareLink(models.Model):
    """An expiring, revocable link to a file, a folder or a selection; only its token's hash is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    bucket = models.CharField(max_length=63, db_index=True)
    kind = models.CharField(max_length=10, choices=LinkKind.choices, default=LinkKind.FILE)
    # FILE: the file's key. FOLDER: the folder's prefix, ending with "/" ("" for the whole
    # bucket). SELECTION: the folder the files were chosen in, and `keys` lists them.
    key = models.CharField(max_length=1024, blank=True)
    keys = models.JSONField(default=list, blank=True)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links"
    )
    recipient_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    password_hash = models.CharField(max_length=200, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set when the portal deletes or moves the file, or a recipient finds it gone: a new file
    # under the same name is another file, which the link never shared.
    file_deleted_at = models.DateTimeField(null=True, blank=True)
    notify_on_download = models.BooleanField(default=False)
    notified_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    # Links emailed at once (one per recipient) share a batch: My links shows them together.
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    # Per-recipient tracking: page opens and downloads, counted with their first and last time.
    opens = models.PositiveIntegerField(default=0)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    first_downloaded_at = models.DateTimeField(null=True, blank=True)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    # A day before expiry, tell the creator if the recipient has not downloaded yet.
    remind_before_expiry = models.BooleanField(default=False)
    reminded_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["creator", "created_at"], name="link_creator_time")]

    def __str__(self) -> str:
        to = f" for {self.recipient_email}" if self.recipient_email else ""
        return f"{self.bucket}/{self.key}{to}"

    @property
    def file_name(self) -> str:
        """Return the name people read: the file's, the folder's, or the bucket's."""
        name = self.key.rstrip("/").rsplit("/", 1)[-1]
        return name or self.bucket


class RequestStatus(models.TextChoices):
    """Whether a file request takes files now, or the first reason it does not."""

    ACTIVE = "active", "active"
    REVOKED = "revoked", "revoked"
    EXPIRED = "expired", "expired"
    FULL = "full", "full"
    DISABLED = "disabled", "disabled"


class FileRequestQuerySet(models.QuerySet):
    """The one definition of a file request that takes files; every page, upload and filter asks it."""

    def with_status(self, now: datetime.datetime) -> "FileRequestQuerySet":
        """Annotate each request with `status`: active, or the first reason it takes no files."""
        # Subqueries rather than joins, so that a conditional UPDATE (reserving room for an
        # upload) stays one statement whose conditions the database re-checks on the row.
        creator_may_write = get_user_model().objects.filter(
            Q(is_superuser=True)
            | Exists(
                BucketGrant.objects.reaching(OuterRef("pk")).filter(
                    bucket=OuterRef(OuterRef("bucket")), role__in=Role.at_least(Role.WRITE)
                )
            ),
            pk=OuterRef("creator_id"),
            is_active=True,
        )
        reasons = [
            (RequestStatus.REVOKED, Q(revoked_at__isnull=False)),
            (RequestStatus.EXPIRED, Q(expires_at__lte=now)),
            (
                RequestStatus.FULL,
                Q(files_received__gte=F("max_files")) | Q(bytes_received__gte=F("max_bytes")),
            ),
            (RequestStatus.DISABLED, ~Exists(creator_may_write)),
        ]
        status = Case(
            *[When(condition, then=Value(reason)) for reason, condition in reasons],
            default=Value(RequestStatus.ACTIVE),
            output_field=models.CharField(),
        )
        return self.annotate(status=status)

    def usable(self, now: datetime.datetime) -> "FileRequestQuerySet":
        """Return the requests that take files now."""
        return self.with_status(now).filter(status=RequestStatus.ACTIVE)


class FileRequest(models.Model):
    """An upload-only link: outsiders drop files into one folder and see nothing else of it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    bucket = models.CharField(max_length=63, db_index=True)
    prefix = models.CharField(max_length=1024, blank=True)  # the folder, ending with "/" or ""
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="file_requests"
    )
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    max_bytes = models.BigIntegerField()
    max_files = models.PositiveIntegerField()
    password_hash = models.CharField(max_length=200, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # What was stored (checked on completed objects), and what uploads in flight have reserved.
    bytes_received = models.BigIntegerField(default=0)
    files_received = models.PositiveIntegerField(default=0)
    bytes_reserved = models.BigIntegerField(default=0)
    files_reserved = models.PositiveIntegerField(default=0)

    objects = FileRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["creator", "created_at"], name="request_creator_time")]

    def __str__(self) -> str:
        return f"{self.title} → {self.bucket}/{self.prefix}"


class FileRequestVisit(models.Model):
    """One outsider's visit of a file request: their uploads, and the one email that lists them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(FileRequest, on_delete=models.CASCADE, related_name="visits")
    started_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"visit of {self.request} at {self.started_at:%Y-%m-%d %H:%M}"


class ReceivedFile(models.Model):
    """A file an outsider stored through a file request."""

    visit = models.ForeignKey(FileRequestVisit, on_delete=models.CASCADE, related_name="files")
    key = models.CharField(max_length=1024)
    size = models.BigIntegerField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.key} ({self.size} bytes)"


class JobKind(models.TextChoices):
    COPY = "copy", "Copy"
    MOVE = "move", "Move"
    DELETE = "delete", "Delete"


class JobState(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    DONE = "done", "Done"


class FolderJob(models.Model):
    """A folder (or selection) copy, move or delete run as a background task, and how far it got.

    The walk goes through the source keys in S3's order: `cursor` is the last key whose work is
    counted, `pending` the keys of the batch in flight (so that a resumed job counts what a killed
    one did but did not record), and folder markers are deleted last, once `walked` is set."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=JobKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="folder_jobs",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    bucket = models.CharField(max_length=63)
    prefix = models.CharField(max_length=1024, blank=True)  # the folder the sources are named in
    sources = models.JSONField(default=list)  # the folder itself, or the selected keys
    dst_bucket = models.CharField(max_length=63, blank=True)
    dst_prefix = models.CharField(max_length=1024, blank=True)
    overwrite = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    planned = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cursor = models.CharField(max_length=1024, blank=True)
    walked = models.BooleanField(default=False)
    pending = models.JSONField(default=list, blank=True)
    failures = models.JSONField(default=list, blank=True)  # [key, message], the first ones
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="folderjob_user_recent"),
            models.Index(fields=["state", "heartbeat_at"], name="folderjob_state_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.bucket}/{self.prefix} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state == JobState.DONE


class ThumbnailState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    SKIPPED = "skipped", "Skipped (too large)"
    REFUSED = "refused", "Refused (too many pixels)"
    FAILED = "failed", "Failed"


class Thumbnail(models.Model):
    """The small picture of one version of an image or PDF (sharing/services/thumbnails.py)."""

    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    # Which version of the file it shows: its ETag, or its size and time when it has none.
    version = models.CharField(max_length=200)
    source_size = models.BigIntegerField(default=0)
    state = models.CharField(
        max_length=10, choices=ThumbnailState.choices, default=ThumbnailState.PENDING
    )
    reason = models.CharField(max_length=500, blank=True)
    storage_name = models.CharField(max_length=300, blank=True)  # in STORAGES["thumbnails"]
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a task was last asked to make it: a pending one asked long ago is asked again.
    requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "key"], name="thumbnail_one_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key}: thumbnail {self.state}"
