"""Every action a person can take: check permission, record the intent, call S3, record the outcome.

Split by subject; callers use `from sharing import services` and the names re-exported here.
"""

from sharing.services.buckets import bucket_create, bucket_delete, first_admin_create  # noqa: F401
