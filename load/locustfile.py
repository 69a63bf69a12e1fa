"""The load scenario of `make load`: people browsing, uploading, downloading and sharing files.

load/run.py starts the portal and runs this file with locust; it is not meant to be run alone.
Each simulated person logs in once with an account of their own (so login throttling never
counts them), then browses folders, opens file pages, downloads files (the portal's redirect,
then the presigned URL on S3), uploads small files as the upload panel does
(load/upload_panel.py replays static/sharing/js/upload.js: check the batch, start, PUT to S3 in
one request or in signed parts, complete), and shares files: creates a link with the sharing panel's form, and opens
links as their recipients do, in a browser of their own without the portal's cookies.

Every answer is checked for what a browser needs of it; anything else is a failure. The plan
(accounts, buckets, folders, files) is read from the file named by LOAD_PLAN; what was uploaded
and what each link answered is written to LOAD_RESULTS for run.py's consistency checks.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from locust import HttpUser, between, events, task
from locust.clients import HttpSession
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load.upload_panel import MIB, MIN_PART, UploadPanel  # noqa: E402

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
RESULTS = Path(os.environ["LOAD_RESULTS"])
TIMEOUT = 30  # seconds, as gunicorn's worker timeout
SMALL_SIZES = (1, 512, 4096, 20_000, 100_000, 300_000, MIB)
IN_PARTS_SHARE = 0.1  # a tenth of the uploaded files are over 5 MiB, sent in parts
LIMITED_LINK_SHARE = 0.25  # links with a download limit, opened by several recipients at once
LINK_LIMIT = 3
UPLOAD_CONFIG = re.compile(r'<script id="upload-config" type="application/json">(.*?)</script>')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CREATED_URL = re.compile(r'value="([^"]+)" id="created-url"')
PRIVATE = 'data-testid="public-state">private</span>'
USED_UP = "This link has been used as many times as it allows."  # its page when the limit is hit

Check = Callable[[Any], str | None]


def member_task(weight: int) -> Callable[[Callable[[Any], None]], Any]:
    """A task of a logged-in member; someone whose login failed sees the login page again first."""

    def decorate(function: Callable[[Any], None]) -> Any:
        @functools.wraps(function)
        def run(self: Any) -> None:
            if self.logged_in or self.log_in():
                function(self)

        return task(weight)(run)

    return decorate


@dataclass
class Link:
    """A share link someone created, and what its recipients were answered."""

    token: str
    bucket: str
    key: str
    size: int
    limit: int | None
    pages: int = 0  # recipient pages shown (200)
    downloads: int = 0  # downloads counted (302 to S3)
    gone: int = 0  # 410 answers: the download limit was reached

    @property
    def path(self) -> str:
        return f"/s/{self.token}"


@dataclass
class Shared:
    """What the simulated people know of each other's work (one locust process, gevent)."""

    accounts: Iterator[dict[str, str]]
    files: list[tuple[str, str, int]]
    links: list[Link] = field(default_factory=list)
    uploaded: list[tuple[str, str, int]] = field(default_factory=list)
    serial: Iterator[int] = field(default_factory=itertools.count)
    resent: list[str] = field(default_factory=list)  # requests sent twice, and why


SHARED = Shared(accounts=iter(PLAN["accounts"]), files=[tuple(item) for item in PLAN["files"]])


class ResendOnClosedConnection(Retry):
    """Send a request once more when the connection it went on was closed under it, as browsers do.

    gunicorn closes a kept-alive connection after 2 s without a request; one sent at that moment
    is lost with the connection ("connection reset"), and browsers send it again on a new one.
    Timeouts and refused connections are not retried: they are failures.
    """

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, ProtocolError)

    def increment(
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Retry:
        again = super().increment(method, url, *args, **kwargs)  # raises on the second attempt
        error = kwargs.get("error")
        SHARED.resent.append(f"{method} {(url or '').split('?')[0]}: {error!r}"[:300])
        return again


RESEND = ResendOnClosedConnection(
    total=1, connect=0, read=1, redirect=0, status=0, other=0, allowed_methods=None,
    raise_on_redirect=False, raise_on_status=False,
)  # fmt: skip


@dataclass
class Kind:
    """Every answer time of one kind of request, and its failures."""

    times: list[float] = field(default_factory=list)  # milliseconds
    failures: Counter[str] = field(default_factory=Counter)


KINDS: defaultdict[str, Kind] = defaultdict(Kind)
STARTED: list[float] = []


@events.test_start.add_listener
def _started(**kwargs: Any) -> None:
    STARTED.append(time.time())


@events.request.add_listener
def _count(
    *, request_type: str, name: str, response_time: float, exception: Any, **kwargs: Any
) -> None:
    kind = KINDS[f"{name} ({request_type})"]
    kind.times.append(response_time)
    if exception is not None:
        kind.failures[str(exception)[:500]] += 1


@events.quitting.add_listener
def _write_results(environment: Any, **kwargs: Any) -> None:
    """Write what the checks need; the users have all stopped by now."""
    links = [
        {"token": link.token, "limit": link.limit, "pages": link.pages}
        | {"downloads": link.downloads, "gone": link.gone}
        for link in SHARED.links
    ]
    exceptions = [
        {"count": row["count"], "message": row["msg"], "traceback": row["traceback"]}
        for row in environment.runner.exceptions.values()
    ]
    results = {
        "seconds": time.time() - STARTED[0] if STARTED else 0,
        "kinds": {name: {"times": k.times, "failures": k.failures} for name, k in KINDS.items()},
        "exceptions": exceptions,
        "uploaded": SHARED.uploaded,
        "links": links,
        "resent": SHARED.resent,
    }
    RESULTS.write_text(json.dumps(results))


def _snippet(response: Any) -> str:
    if not response.status_code and getattr(response, "error", None) is not None:
        return repr(response.error)
    return " ".join((response.text or "")[:300].split())


class Person(HttpUser):
    """One member of the portal, with a browser of their own and one as a link's recipient."""

    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        try:
            account = next(SHARED.accounts)
        except StopIteration:
            raise RuntimeError("more simulated people than accounts in the plan") from None
        self.username = account["username"]
        self.origin = self.host.rstrip("/")
        self.s3 = HttpSession(PLAN["s3"], self.environment.events.request, self)
        self.recipient = HttpSession(self.origin, self.environment.events.request, self)
        for session in (self.client, self.s3, self.recipient):
            session.adapters["http://"].max_retries = RESEND
        self.logged_in = False
        self.log_in()

    def log_in(self) -> bool:
        """Log in with the login form; return whether it worked."""
        page = self.call("GET", "/login/", name="login page", check=self.has_form)
        if page is None:
            return False
        form = {"username": self.username, "password": PLAN["password"], "next": ""}
        answer = self.call(
            "POST",
            "/login/",
            name="login",
            data={"csrfmiddlewaretoken": CSRF_INPUT.search(page.text)[1], **form},
            headers={"Origin": self.origin},
            expect=(302,),
            check=lambda r: None if r.headers.get("Location") == "/buckets/" else "not logged in",
        )
        self.logged_in = answer is not None
        return self.logged_in

    # --- requests ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        *,
        name: str,
        session: HttpSession | None = None,
        expect: tuple[int, ...] = (200,),
        check: Check | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request; return its response, or None once it is counted as failed."""
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        session = session or self.client
        with session.request(method, url, name=name, catch_response=True, **kwargs) as response:
            problem = None
            if response.status_code not in expect:
                problem = f"HTTP {response.status_code}: {_snippet(response)}"
            elif check is not None:
                problem = check(response)
            if problem:
                response.failure(problem)
                return None
            response.success()
            return response

    def used_up(self, response: Any) -> str | None:
        return None if USED_UP in response.text else "gone, but not used up"

    def has_form(self, response: Any) -> str | None:
        return None if CSRF_INPUT.search(response.text) else "no form"

    def to_s3(self, response: Any) -> str | None:
        location = response.headers.get("Location", "")
        return None if location.startswith(PLAN["s3"] + "/") else f"redirect to {location[:80]}"

    def fetch_from_s3(self, url: str, size: int, *, name: str) -> None:
        def check(response: Any) -> str | None:
            if len(response.content) != size:
                return f"{len(response.content)} bytes instead of {size}"
            disposition = response.headers.get("Content-Disposition", "")
            return None if disposition.startswith("attachment") else "not an attachment"

        self.call("GET", url, name=name, session=self.s3, check=check)

    # --- browsing and downloading ---------------------------------------------------------------

    def folder(self, bucket: str, prefix: str, *, upload_panel: bool = False) -> Any:
        url = f"/b/{bucket}/" + (f"?prefix={quote(prefix)}" if prefix else "")

        def check(response: Any) -> str | None:
            if (
                'data-testid="object-table"' not in response.text
                and "is empty</h2>" not in response.text
            ):
                return "no listing"
            if upload_panel and not UPLOAD_CONFIG.search(response.text):
                return "no upload panel"
            return None

        return self.call("GET", url, name="folder page", check=check)

    def file_page_of(self, bucket: str, key: str, size: int) -> Any:
        # The page's Download button names the key; the size is exact in bytes, shown or on hover.
        download = f"/b/{bucket}/download/?key={html.escape(quote(key))}"
        sizes = (f"{size:,} bytes", f"{size}\xa0bytes" if size != 1 else "1\xa0byte")

        def check(response: Any) -> str | None:
            if download not in response.text or not any(s in response.text for s in sizes):
                return "not this file"
            # Every file here is private; "unknown" means the portal could not ask S3.
            return None if PRIVATE in response.text else "public access not measured"

        return self.call(
            "GET", f"/b/{bucket}/object/?key={quote(key)}", name="file page", check=check
        )

    @member_task(5)
    def browse(self) -> None:
        bucket, prefix = random.choice(PLAN["folders"])
        self.folder(bucket, prefix)

    @member_task(4)
    def file_page(self) -> None:
        self.file_page_of(*random.choice(SHARED.files))

    @member_task(3)
    def download(self) -> None:
        bucket, key, size = random.choice(SHARED.files)
        url = f"/b/{bucket}/download/?key={quote(key)}"
        answer = self.call("GET", url, name="download", expect=(302,), check=self.to_s3)
        if answer is not None:
            self.fetch_from_s3(answer.headers["Location"], size, name="S3 GET file")

    # --- uploading ------------------------------------------------------------------------------

    @member_task(2)
    def upload(self) -> None:
        """Drop one to three files on a folder page; the panel checks them, then sends each."""
        bucket, prefix = random.choice(PLAN["upload_folders"])
        page = self.folder(bucket, prefix, upload_panel=True)
        if page is None:
            return
        panel = UploadPanel(self, json.loads(UPLOAD_CONFIG.search(page.text)[1]))
        batch = []
        for _ in range(random.randint(1, 3)):
            in_parts = random.random() < IN_PARTS_SHARE
            size = MIN_PART + random.randint(1, MIB) if in_parts else random.choice(SMALL_SIZES)
            name = f"load-{self.username}-{next(SHARED.serial):05d}.{'zip' if in_parts else 'txt'}"
            batch.append((name, size))
        if not panel.check(prefix, batch):
            return
        for name, size in batch:
            key = prefix + name
            if panel.send(key, size):
                SHARED.uploaded.append((bucket, key, size))
                SHARED.files.append((bucket, key, size))

    # --- sharing ----------------------------------------------------------------------------------

    @member_task(1)
    def share(self) -> None:
        """Open a file's page and create a link with its sharing panel's form."""
        bucket, key, size = random.choice(SHARED.files)
        page = self.file_page_of(bucket, key, size)
        if page is None:
            return
        limit = LINK_LIMIT if random.random() < LIMITED_LINK_SHARE else None
        form = {
            "csrfmiddlewaretoken": CSRF_INPUT.search(page.text)[1],
            "link-key": key,
            "link-expiry": "1d",
            "link-custom_amount": "",
            "link-custom_unit": "hours",
            "link-password": "",
            "link-max_downloads": str(limit or ""),
        }
        prefix = f"{PLAN['site_url']}/s/"

        def check(response: Any) -> str | None:
            found = CREATED_URL.search(response.text)
            return None if found and found[1].startswith(prefix) else "no link on the page"

        created = self.call(
            "POST", f"/b/{bucket}/share/link/", name="link create", data=form,
            headers={"Origin": self.origin}, check=check,
        )  # fmt: skip
        if created is None:
            return
        token = html.unescape(CREATED_URL.search(created.text)[1])[len(prefix) :]
        link = Link(token, bucket, key, size, limit)
        SHARED.links.append(link)
        self.open_link(link)

    @task(3)
    def open_shared(self) -> None:
        """Follow a link that someone shared, as its recipient."""
        if SHARED.links:
            self.open_link(random.choice(SHARED.links))

    def open_link(self, link: Link) -> None:
        """Show the recipient page, press Download, and fetch the file from S3."""
        gone = (410,) if link.limit else ()  # only a limited link may be used up
        page = self.call(
            "GET", link.path, name="link page", session=self.recipient, expect=(200, *gone),
            check=lambda r: self.has_form(r) if r.status_code == 200 else self.used_up(r),
        )  # fmt: skip
        if page is None:
            return
        if page.status_code == 410:
            link.gone += 1
            return
        link.pages += 1
        answer = self.call(
            "POST", link.path, name="link download", session=self.recipient,
            data={"csrfmiddlewaretoken": CSRF_INPUT.search(page.text)[1]},
            headers={"Origin": self.origin}, expect=(302, *gone),
            check=lambda r: self.to_s3(r) if r.status_code == 302 else self.used_up(r),
        )  # fmt: skip
        if answer is None:
            return
        if answer.status_code == 410:
            link.gone += 1
            return
        link.downloads += 1
        self.fetch_from_s3(answer.headers["Location"], link.size, name="S3 GET link file")
