"""ZIP downloads: a folder (or a whole bucket) as one archive, streamed as it is built."""

from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from sharing import s3
from sharing.audit import Actor
from sharing.services import archives


def zip_response(
    chunks: Iterator[bytes], filename: str, *, size: int | None = None
) -> StreamingHttpResponse:
    """Return a response that sends the ZIP's chunks as they come, as an attachment."""
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = s3.content_disposition(filename)
    response["Cache-Control"] = "private, no-store"
    if size is not None:
        response["Content-Length"] = str(size)
    return response


def plan_response(actor: Actor, plan: archives.ArchivePlan) -> StreamingHttpResponse:
    """Return the streaming response of a planned ZIP, its length known before it is built."""
    chunks = archives.archive_chunks(actor=actor, plan=plan)
    return zip_response(chunks, plan.filename, size=archives.archive_size(plan=plan))


@require_GET
@login_required
def folder_zip(request: HttpRequest, bucket: str) -> StreamingHttpResponse:
    # A download changes nothing: GET, like a single file's download. Refusals (no access,
    # over the caps) are raised before the first byte and answered by the middleware.
    actor = Actor.from_request(request)
    prefix = request.GET.get("prefix", "")
    plan = archives.folder_archive(actor=actor, bucket=bucket, prefix=prefix)
    return plan_response(actor, plan)


urlpatterns = [
    path("b/<bucket:bucket>/zip/", folder_zip, name="folder_zip"),
]
