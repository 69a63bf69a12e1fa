"""Public and private files: object ACL where the bucket honours it, else a per-key policy statement;
the effective state is always measured by an anonymous request, never assumed. Whether a bucket's
files may be public at all is the portal's own setting (`public_files_allowed`), whatever the
storage would allow."""

from dataclasses import dataclass

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import BucketSettings, Outcome, Role
from sharing.services.errors import ServiceError
from sharing.services.objects import ObjectError

ACL_REFUSED_CODES = ("AccessControlListNotSupported", "NotImplemented", "AccessDenied", "501")
POLICY_REFUSED_CODES = ("NotImplemented", "501", "MalformedPolicy", "InvalidPolicyDocument")
METHOD_NAMES = {"acl": "object ACL", "policy": "bucket policy"}

NOT_ALLOWED = (
    "Public files are not allowed in this bucket. Its manager can allow them on the bucket's "
    "page; until then, use a share link."
)
BLOCKED = (
    "Block Public Access is on for this bucket, so no file in it can be public. A storage "
    "administrator can turn it off for this bucket; until then, use a share link."
)
ACLS_BLOCKED_AND_UNNAMEABLE = (
    "This bucket does not accept public ACLs, and its bucket policy cannot name a file whose name "
    "contains *, ? or ${ exactly. Rename the file, or use a share link."
)
ACCOUNT_DENIED = (
    "The storage refused to make this file public (access denied). Block Public Access is "
    "probably on for the whole storage account, or the portal's credentials may not change bucket "
    "policies. Ask a storage administrator; until then, use a share link."
)
NOT_SUPPORTED = (
    "This storage service supports neither public object ACLs nor bucket policies, so files "
    "here cannot be made public. Use a share link instead."
)
NOT_HONOURED = (
    "The storage accepted the change but still refuses anonymous readers (Block Public Access on "
    "the whole account, or a provider that does not allow public files). The change was undone: "
    "the file stays private. Use a share link instead."
)
STILL_PUBLIC = (
    "Anyone can still read this file: a broader rule (a bucket policy statement for the whole "
    "bucket or a folder, or a bucket ACL) makes it public. Ask the bucket's manager to review it."
)


@dataclass(frozen=True)
class PublicState:
    """Whether strangers can read a file, how the portal made it so, and why not when it cannot."""

    public: bool | None  # measured by an anonymous request; None when it could not be checked
    url: str
    method: str = ""  # "acl" or "policy" when the portal's own grant is in place
    explanation: str = ""  # plain words when the result differs from what was asked, or is unknown
    possible: bool = True  # False when this bucket or provider forbids public files

    @property
    def label(self) -> str:
        return {True: "public", False: "private", None: "unknown"}[self.public]


class PublicRefusedError(ServiceError):
    """Public access is impossible here; the message explains why, for people."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation, status=409)

    @property
    def explanation(self) -> str:
        return self.message


class PublicFilesNotAllowedError(ServiceError):
    """The portal's setting for this bucket forbids public files."""

    def __init__(self) -> None:
        super().__init__(NOT_ALLOWED, status=403)


def public_files_allowed(*, bucket: str) -> bool:
    """Return whether the portal lets files of this bucket be public (off unless a manager allows)."""
    return BucketSettings.objects.filter(bucket=bucket, public_files=True).exists()


def require_public_files_allowed(*, actor: Actor, bucket: str, key: str, action: str) -> None:
    """Refuse (recorded, 403) making a file of this bucket public when the portal forbids it."""
    if public_files_allowed(bucket=bucket):
        return
    audit.record(
        actor=actor,
        action=action,
        outcome=Outcome.DENIED,
        bucket=bucket,
        key=key,
        message=NOT_ALLOWED,
    )
    raise PublicFilesNotAllowedError


def provider_block(*, actor: Actor, bucket: str) -> str:
    """Return, in plain words, what the storage's own Block Public Access says for this bucket."""
    try:
        with audit.s3_call(actor=actor, action="bucket.public_settings", bucket=bucket) as call:
            settings = s3.bucket_public_settings(bucket)
            call.message = "Block Public Access read."
    except s3.S3Error as error:
        return f"The storage's own Block Public Access setting could not be read: {error.message}"
    if not settings.block_supported:
        return (
            "The storage does not support a Block Public Access setting: the portal's setting "
            "above is the only rule."
        )
    if settings.acls_blocked and settings.policy_blocked:
        return (
            "The storage's own Block Public Access is on for this bucket: it refuses public "
            "files, whatever the portal allows."
        )
    if settings.acls_blocked or settings.policy_blocked:
        blocked = "public ACLs" if settings.acls_blocked else "public bucket policies"
        return (
            f"The storage's own Block Public Access is partly on for this bucket ({blocked} "
            "blocked): the portal uses the other way."
        )
    return "The storage's own Block Public Access is off for this bucket."


def _sentence(detail: str) -> str:
    # Not str.capitalize(): it would lowercase "HTTP" and the error names that follow.
    return detail[:1].upper() + detail[1:] + "."


def _probe(*, actor: Actor, bucket: str, key: str) -> s3.Probe:
    with audit.s3_call(actor=actor, action="object.probe_public", bucket=bucket, key=key) as call:
        probe = s3.probe_anonymous(bucket, key)
        call.message = _sentence(probe.detail)
    return probe


def _unknown(probe: s3.Probe) -> str:
    return (
        f"The portal could not check from the server whether strangers can open the public URL "
        f"({probe.detail})."
    )


def _grant_by_policy(bucket: str, key: str, settings: s3.BucketPublicSettings) -> None:
    if settings.policy_blocked:
        raise PublicRefusedError(BLOCKED)
    if not s3.policy_can_name(key):
        raise PublicRefusedError(ACLS_BLOCKED_AND_UNNAMEABLE)
    try:
        s3.grant_public_read(bucket, key)
    except s3.S3Error as error:
        if error.code in ("AccessDenied", "403"):
            raise PublicRefusedError(ACCOUNT_DENIED) from error
        if error.code in POLICY_REFUSED_CODES:
            raise PublicRefusedError(NOT_SUPPORTED) from error
        if error.code == "PolicyTooLarge":
            raise PublicRefusedError(error.message) from error
        raise


def _make_public(bucket: str, key: str, settings: s3.BucketPublicSettings) -> str:
    """Grant public read by the object ACL when the bucket takes it, else by policy; return how."""
    if settings.acls_enabled and not settings.acls_blocked:
        try:
            s3.put_object_acl(bucket, key, public=True)
            return "acl"
        except s3.S3Error as error:
            if error.code not in ACL_REFUSED_CODES:
                raise
    if settings.acls_blocked and settings.policy_blocked:
        raise PublicRefusedError(BLOCKED)
    _grant_by_policy(bucket, key, settings)
    return "policy"


def _remove_grants(bucket: str, key: str) -> None:
    # Both mechanisms are cleared: the object may have been made public by an upload's ACL on a
    # server that stores ACLs without enforcing them, or by the policy on another day.
    try:
        acl_public = s3.object_acl_is_public(bucket, key)
    except s3.S3Error as error:
        # A deleted file keeps no ACL, but its policy statement must still go: a new file under
        # the same name would otherwise be public from its first byte.
        if error.code not in ("NoSuchKey", "404", "NotFound"):
            raise
        acl_public = False
    if acl_public:
        try:
            s3.put_object_acl(bucket, key, public=False)
        except s3.S3Error as error:
            if error.code not in ACL_REFUSED_CODES:
                raise
    try:
        s3.revoke_public_read(bucket, key)
    except s3.S3Error as error:
        if error.code not in POLICY_REFUSED_CODES:
            raise


def _set_private(*, actor: Actor, bucket: str, key: str, url: str) -> PublicState:
    with audit.s3_call(actor=actor, action="object.set_private", bucket=bucket, key=key) as call:
        _remove_grants(bucket, key)
        call.message = "Public ACL and policy statement removed (where present)."
    probe = _probe(actor=actor, bucket=bucket, key=key)
    explanation = STILL_PUBLIC if probe.public else _unknown(probe) if probe.public is None else ""
    return PublicState(public=probe.public, url=url, explanation=explanation)


def object_set_public(*, actor: Actor, bucket: str, key: str, public: bool) -> PublicState:
    """Make one file public or private and return its effective state, as a stranger sees it."""
    action = "object.set_public" if public else "object.set_private"
    permissions.require(actor=actor, bucket=bucket, role=permissions.PUBLIC_ROLE, action=action)
    url = s3.public_url(bucket, key)
    if not public:
        return _set_private(actor=actor, bucket=bucket, key=key, url=url)
    require_public_files_allowed(actor=actor, bucket=bucket, key=key, action=action)
    try:
        with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
            if s3.head(bucket, key) is None:
                raise ObjectError(s3.MESSAGES["NoSuchKey"], status=404)
            settings = s3.bucket_public_settings(bucket)
            method = _make_public(bucket, key, settings)
            call.message = f"Public read granted by {METHOD_NAMES[method]}."
        probe = _probe(actor=actor, bucket=bucket, key=key)
        if probe.public is False and method == "acl":
            with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
                # SeaweedFS (and accounts with IgnorePublicAcls) store the ACL without enforcing
                # it: withdraw it so the stored state does not claim a lie, then use the policy.
                s3.put_object_acl(bucket, key, public=False)
                _grant_by_policy(bucket, key, settings)
                method = "policy"
                call.message = "The object ACL is not honoured; public read granted by policy."
            probe = _probe(actor=actor, bucket=bucket, key=key)
    except PublicRefusedError as refused:
        return PublicState(public=False, url=url, explanation=refused.explanation, possible=False)
    if probe.public is False:
        with audit.s3_call(
            actor=actor, action="object.set_private", bucket=bucket, key=key
        ) as call:
            _remove_grants(bucket, key)
            call.message = "Undone: anonymous readers were still refused."
        return PublicState(public=False, url=url, explanation=NOT_HONOURED, possible=False)
    explanation = _unknown(probe) if probe.public is None else ""
    return PublicState(public=probe.public, url=url, method=method, explanation=explanation)


def object_public_state(*, actor: Actor, bucket: str, key: str) -> PublicState:
    """Return whether strangers can read the file now, how, and whether it could be made public."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.public_state")
    url = s3.public_url(bucket, key)
    with audit.s3_call(actor=actor, action="object.public_state", bucket=bucket, key=key) as call:
        settings = s3.bucket_public_settings(bucket)
        by_policy = s3.has_public_read_statement(bucket, key)
        by_acl = settings.acls_enabled and s3.object_acl_is_public(bucket, key)
        probe = s3.probe_anonymous(bucket, key)
        call.message = _sentence(probe.detail)
    method = "policy" if by_policy else "acl" if by_acl else ""
    possible, explanation = True, ""
    acl_usable = settings.acls_enabled and not settings.acls_blocked
    if not public_files_allowed(bucket=bucket):
        possible, explanation = False, NOT_ALLOWED
    elif settings.acls_blocked and settings.policy_blocked:
        possible, explanation = False, BLOCKED
    elif not acl_usable and not s3.policy_can_name(key):
        possible, explanation = False, ACLS_BLOCKED_AND_UNNAMEABLE
    if probe.public is None:
        explanation = _unknown(probe)
    elif probe.public and not method:
        explanation = STILL_PUBLIC
    return PublicState(
        public=probe.public, url=url, method=method, explanation=explanation, possible=possible
    )
