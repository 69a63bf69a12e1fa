"""The only door to S3: boto3 and botocore are imported in this package and nowhere else.

Split by subject; callers use `from sharing import s3` and the names re-exported here.
"""

from sharing.s3.access import *  # noqa: F403
from sharing.s3.buckets import *  # noqa: F403
from sharing.s3.core import *  # noqa: F403
from sharing.s3.core import MESSAGES, S3Error, client, last_request_id, reset_request_id  # noqa: F401
from sharing.s3.objects import *  # noqa: F403
from sharing.s3.uploads import *  # noqa: F403
