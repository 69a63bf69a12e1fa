"""Every action a person can take: check permission, record the intent, call S3, record the outcome.

One module per subject (`from sharing.services import links`); the bucket actions are also here,
as `services.bucket_create` and friends.
"""

from sharing.services.buckets import (
    BucketError,
    BucketExistsError,
    BucketNotEmptyError,
    bucket_create,
    bucket_delete,
    first_admin_create,
)

__all__ = [
    "BucketError",
    "BucketExistsError",
    "BucketNotEmptyError",
    "bucket_create",
    "bucket_delete",
    "first_admin_create",
]
