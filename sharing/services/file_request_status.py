"""Why a file request takes no files: the words for each status of FileRequest.objects.with_status."""

from django.utils import timezone

from sharing.models import FileRequest, RequestStatus

REFUSALS = {
    RequestStatus.REVOKED: "This file request was withdrawn by the person who made it.",
    RequestStatus.EXPIRED: "This file request has expired.",
    RequestStatus.FULL: "This file request has received all the files it accepts.",
    RequestStatus.DISABLED: "This file request no longer accepts files.",
}
GONE_STATUS = 410  # the request existed; it takes no files any more


def request_refusal(*, request_id: object) -> str:
    """Return why the request takes no files now (its status, through the one rule), or ""."""
    status = (
        FileRequest.objects.with_status(timezone.now())
        .filter(pk=request_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        return REFUSALS[RequestStatus.REVOKED]
    return REFUSALS.get(status, "")
