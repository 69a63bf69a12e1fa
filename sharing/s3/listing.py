"""Flat listings of a whole bucket, a page at a time (the search index's walk)."""

from typing import Any

from sharing.s3.core import Page, client, page_from, translated

WALK_PAGE = 1000  # ListObjectsV2's largest page


@translated
def list_flat_page(bucket: str, *, token: str = "", size: int = WALK_PAGE) -> Page:
    """Return one page of every key in a bucket (no folder grouping) and the next page's token."""
    params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": size}
    if token:
        params["ContinuationToken"] = token
    response = client().list_objects_v2(**params)
    return page_from(response)
