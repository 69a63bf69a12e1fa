"""The only door to S3: boto3 and botocore are imported in this package and nowhere else.

Split by subject; callers use `from sharing import s3` and the names listed in `__all__`, which
are the portal's own: no boto3 or botocore class is handed out.
"""

from sharing.s3.buckets import (
    abort_incomplete_uploads_after,
    allow_public_access,
    bucket_exists,
    bucket_is_empty,
    create_bucket,
    delete_bucket,
    empty_bucket,
    list_buckets,
)
from sharing.s3.core import (
    MESSAGES,
    ObjectSummary,
    S3Error,
    client,
    last_request_id,
    reset_request_id,
    uses_temporary_credentials,
)
from sharing.s3.health import breaker_is_open, long_call, request_budget
from sharing.s3.objects import (
    MAX_PRESIGN_SECONDS,
    DeleteResult,
    ObjectInfo,
    copy,
    delete,
    delete_many,
    head,
    list_keys,
    list_page,
    presigned_get,
    put_empty,
)
from sharing.s3.probe import ready_check
from sharing.s3.public_access import (
    BucketPublicSettings,
    Probe,
    bucket_public_settings,
    download_origin,
    grant_public_read,
    has_public_read_statement,
    object_acl_is_public,
    policy_can_name,
    probe_anonymous,
    public_read_sid,
    public_url,
    put_object_acl,
    revoke_public_read,
    revoke_public_reads,
)
from sharing.s3.uploads import (
    MAX_PARTS,
    MAX_SINGLE_PUT_BYTES,
    MIN_PART_BYTES,
    Part,
    abort_multipart,
    complete_multipart,
    cors_rules,
    create_multipart,
    list_multipart_uploads,
    list_parts,
    part_count,
    part_length,
    presign_part,
    presign_put,
    set_cors_rules,
    stream_put,
)

__all__ = [
    # core: errors, the client, request ids
    "MAX_PRESIGN_SECONDS",
    "MESSAGES",
    "S3Error",
    "client",
    "last_request_id",
    "reset_request_id",
    "uses_temporary_credentials",
    # health: the circuit breaker and the time budget
    "breaker_is_open",
    "long_call",
    "request_budget",
    # buckets
    "abort_incomplete_uploads_after",
    "allow_public_access",
    "bucket_exists",
    "bucket_is_empty",
    "create_bucket",
    "delete_bucket",
    "empty_bucket",
    "list_buckets",
    # objects
    "DeleteResult",
    "ObjectInfo",
    "ObjectSummary",
    "copy",
    "delete",
    "delete_many",
    "head",
    "list_keys",
    "list_page",
    "presigned_get",
    "put_empty",
    # public access
    "BucketPublicSettings",
    "Probe",
    "bucket_public_settings",
    "download_origin",
    "grant_public_read",
    "has_public_read_statement",
    "object_acl_is_public",
    "policy_can_name",
    "probe_anonymous",
    "public_read_sid",
    "public_url",
    "put_object_acl",
    "revoke_public_read",
    "revoke_public_reads",
    # uploads
    "MAX_PARTS",
    "MAX_SINGLE_PUT_BYTES",
    "MIN_PART_BYTES",
    "Part",
    "abort_multipart",
    "complete_multipart",
    "cors_rules",
    "create_multipart",
    "list_multipart_uploads",
    "list_parts",
    "part_count",
    "part_length",
    "presign_part",
    "presign_put",
    "set_cors_rules",
    "stream_put",
    # the embedded launcher's readiness probe
    "ready_check",
]
