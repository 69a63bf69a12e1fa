"""The upload panel of a folder page, replayed as static/sharing/js/upload.js and Uppy drive it.

Before a batch, the portal checks every name (prepare). A file of 5 MiB or less is started,
PUT whole to the URL the portal signed, and completed; a larger one is started, its upload id read
from the answer URL as S3's XML, each part signed and PUT in turn, completed, and the answer URL
read again. Every PUT to S3 is preceded by the browser's CORS preflight, since presigned URLs
differ each time.
"""

from __future__ import annotations

import html
import os
from typing import Any

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part, and Uppy's threshold for sending a file in parts
BLOB = os.urandom(MIN_PART + MIB + 1)  # every upload sends a slice of these bytes


class UploadPanel:
    """One folder page's upload panel, for one person (a locust user of load/locustfile.py)."""

    def __init__(self, person: Any, config: dict[str, Any]) -> None:
        self.person = person
        self.config = config  # the page's upload-config JSON: URLs, CSRF token, part size

    def check(self, prefix: str, batch: list[tuple[str, int]]) -> bool:
        """Have the portal check a batch of new names; return whether all may be uploaded."""
        files = [{"id": f"uppy-{name}", "path": name, "size": size} for name, size in batch]
        expected = [
            {"id": f["id"], "key": prefix + f["path"], "exists": False, "problem": ""}
            for f in files
        ]

        def all_free(answer: dict[str, Any]) -> str | None:
            return None if answer.get("files") == expected else f"checked as {answer}"

        url, body = self.config["urls"]["prepare"], {"prefix": prefix, "files": files}
        return self.api(url, body, name="upload prepare", check=all_free) is not None

    def send(self, key: str, size: int) -> bool:
        """Upload one file of the batch; return whether the portal completed it."""
        return self.send_in_parts(key, size) if size > MIN_PART else self.send_whole(key, size)

    def api(self, url: str, body: dict[str, Any], *, name: str, check: Any = None) -> Any:
        """POST JSON to the portal as upload.js does; return the decoded answer, or None."""
        headers = {
            "Accept": "application/json",
            "X-CSRFToken": self.config["csrfToken"],
            "Origin": self.person.origin,
        }

        def decoded(response: Any) -> str | None:
            try:
                data = response.json()
            except ValueError:
                return "not JSON"
            return check(data) if check else None

        answer = self.person.call("POST", url, name=name, json=body, headers=headers, check=decoded)
        return answer.json() if answer is not None else None

    def put_to_s3(self, url: str, data: bytes, *, name: str, content_type: str = "") -> Any:
        """PUT bytes to a presigned URL from the portal's page: CORS preflight, then the PUT."""
        ask = {"Origin": self.person.origin, "Access-Control-Request-Method": "PUT"}
        if content_type:
            ask["Access-Control-Request-Headers"] = "content-type"
        allowed = self.person.call(
            "OPTIONS",
            url,
            name="S3 CORS preflight",
            session=self.person.s3,
            headers=ask,
            check=self.cors_allows,
        )
        if allowed is None:
            return None
        headers = {"Origin": self.person.origin}
        if content_type:
            headers["Content-Type"] = content_type
        return self.person.call(
            "PUT",
            url,
            name=name,
            session=self.person.s3,
            data=data,
            headers=headers,
            check=lambda r: None if r.headers.get("ETag") else "no ETag",
        )

    def cors_allows(self, response: Any) -> str | None:
        allowed = response.headers.get("Access-Control-Allow-Origin", "")
        return None if allowed in (self.person.origin, "*") else f"CORS allows {allowed!r}"

    def send_whole(self, key: str, size: int) -> bool:
        """A small file: one PUT to the URL the portal signed, then the portal checks it."""
        urls, kind = self.config["urls"], "text/plain"
        body = {"key": key, "size": size, "type": kind, "acl": "private", "overwrite": False}
        started = self.api(urls["create"], body | {"multipart": False}, name="upload start")
        if started is None:
            return False
        put = self.put_to_s3(started["url"], BLOB[:size], name="S3 PUT file", content_type=kind)
        if put is None:
            return False
        done = self.api(
            urls["complete"],
            {"uploadId": started["uploadId"], "overwrite": False},
            name="upload complete",
            check=lambda answer: None if answer.get("size") == size else f"completed as {answer}",
        )
        return done is not None

    def send_in_parts(self, key: str, size: int) -> bool:
        """A file over 5 MiB: started, each part signed and PUT in turn, completed, as Uppy does."""
        urls, kind = self.config["urls"], "application/zip"
        body = {"key": key, "size": size, "type": kind, "acl": "private", "overwrite": False}
        started = self.api(urls["create"], body | {"multipart": True}, name="upload start (parts)")
        if started is None:
            return False
        upload_id = started["uploadId"]
        # Uppy's S3 client reads the new upload's id from the answer URL, as S3's XML.
        created = self.person.call(
            "POST",
            started["answerUrl"],
            name="upload answer",
            headers={"Content-Type": kind, "Origin": self.person.origin},
            check=lambda r: (
                None if f"<UploadId>{html.escape(upload_id)}<" in r.text else "no UploadId"
            ),
        )
        if created is None:
            return False
        config = self.config
        part_size = max(config["partBytes"], MIN_PART, -(-size // config["maxParts"]))
        etags = []
        for number, offset in enumerate(range(0, size, part_size), start=1):
            signed = self.api(
                urls["sign"], {"uploadId": upload_id, "part": number}, name="upload sign"
            )
            if signed is None:
                return False
            part = BLOB[offset : min(offset + part_size, size)]
            put = self.put_to_s3(signed["url"], part, name="S3 PUT part")
            if put is None:
                return False
            etags.append(put.headers["ETag"])
        done = self.api(
            urls["complete"],
            {"uploadId": upload_id, "overwrite": False},
            name="upload complete (parts)",
            check=lambda answer: None if answer.get("size") == size else f"completed as {answer}",
        )
        if done is None:
            return False
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{html.escape(etag)}</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        completed = self.person.call(
            "POST",
            done["answerUrl"],
            name="upload answer",
            data=f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>",
            headers={"Content-Type": "application/xml", "Origin": self.person.origin},
            check=lambda r: None if f"<Key>{html.escape(key)}</Key>" in r.text else "no Key",
        )
        return completed is not None
