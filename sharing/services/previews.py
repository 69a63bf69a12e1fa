"""Previews of a file on its page and on a share link's page.

Text kinds are read by one ranged GET of the file's head (PREVIEW_TEXT_BYTES) and shown escaped;
media kinds get a short presigned URL that S3 answers inline with the type chosen here, so that no
file byte is ever served inline from the portal's own origin. SVG is shown only through <img> (which
runs no script) and HTML only as source text. Whether a link may show a preview is `link_refusal`.
"""

import codecs
import csv
import datetime
import io
import json
import posixpath
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import charset_normalizer
import markdown
import nh3
from django.conf import settings
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role, ShareLink
from sharing.services.link_recipients import recipient_actor
from sharing.services.links import LinkPage
from sharing.services.objects import file_name

# <img> fetches at once, when the page loads: a minute is plenty, and a leaked URL soon dies.
IMAGE_URL_SECONDS = 60
# A player fetches when Play is pressed and again at each seek, Chromium's PDF viewer in ranges:
# ten minutes of reading or listening (as long as an upload's part URLs), then a reload.
MEDIA_URL_SECONDS = 600
CSV_SNIFF_CHARS = 64 * 1024
CSV_MAX_COLUMNS = 100
# Names a preview's <img>, <audio>/<video> or <iframe> needs in the page's CSP.
DIRECTIVE_BY_KIND = {
    "image": "img-src",
    "svg": "img-src",
    "audio": "media-src",
    "video": "media-src",
    "pdf": "frame-src",
}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".ico": "image/x-icon",
}
AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".weba": "audio/webm",
}
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg"}
TEXT_EXTENSIONS = frozenset(
    ".txt .log .text .ini .cfg .conf .env .toml .yaml .yml .xml .rst .tex .sql .sh .bash .zsh .ps1 "
    ".bat .py .pyi .js .mjs .cjs .ts .tsx .jsx .css .scss .less .c .h .cc .cpp .hpp .cs .java .kt "
    ".go .rs .rb .php .pl .lua .r .swift .scala .dart .vue .svelte .diff .patch .srt .vtt "
    ".properties .gradle .proto .graphql .tf .nix .el .hs .ex .exs .erl".split()
)
TEXT_NAMES = frozenset(
    "makefile dockerfile readme license licence changelog authors .gitignore .gitattributes "
    ".dockerignore .editorconfig .env".split()
)
TEXT_TYPES = frozenset(
    "application/xml application/javascript application/x-yaml application/yaml application/toml "
    "application/x-sh application/sql".split()
)
# Python-Markdown has no safe mode since 3.0: its documented replacement is to drop the two
# processors that pass raw HTML through, so that raw HTML is shown as text. nh3 then cleans.
MARKDOWN_RAW_HTML = (("preprocessors", "html_block"), ("inlinePatterns", "html"))
MARKDOWN_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}


@dataclass(frozen=True)
class Preview:
    """What the preview box shows; `reason` says why there is none."""

    kind: str  # text, csv, markdown, json, image, svg, html, pdf, audio, video or none
    reason: str = ""
    text: str = ""  # the source, escaped by the template
    html: SafeString = mark_safe("")  # sanitised Markdown
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""  # why a table or JSON fell back to text
    encoding: str = ""
    read_bytes: int = 0
    size: int = 0
    more_rows: bool = False
    url: str = ""  # the presigned inline URL of a media kind
    content_type: str = ""

    @property
    def truncated(self) -> bool:
        return self.read_bytes < self.size

    @property
    def directive(self) -> str:
        return DIRECTIVE_BY_KIND.get(self.kind, "") if self.url else ""

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}" if self.url else ""


@dataclass(frozen=True)
class Kind:
    name: str
    content_type: str = ""  # what S3 is told to answer a media kind with


EXTENSION_KINDS = {
    ".svg": Kind("svg", "image/svg+xml"),
    ".html": Kind("html"),
    ".htm": Kind("html"),
    ".xhtml": Kind("html"),
    ".pdf": Kind("pdf", "application/pdf"),
    ".md": Kind("markdown"),
    ".markdown": Kind("markdown"),
    ".json": Kind("json"),
    ".csv": Kind("csv"),
    ".tsv": Kind("csv"),
    **{ext: Kind("text") for ext in TEXT_EXTENSIONS},
    **{ext: Kind("image", kind) for ext, kind in IMAGE_TYPES.items()},
    **{ext: Kind("audio", kind) for ext, kind in AUDIO_TYPES.items()},
    **{ext: Kind("video", kind) for ext, kind in VIDEO_TYPES.items()},
}
STORED_KINDS = {
    "image/svg+xml": Kind("svg", "image/svg+xml"),
    "text/html": Kind("html"),
    "application/xhtml+xml": Kind("html"),
    "application/pdf": Kind("pdf", "application/pdf"),
    "text/markdown": Kind("markdown"),
    "application/json": Kind("json"),
    "text/csv": Kind("csv"),
    "text/tab-separated-values": Kind("csv"),
    **{kind: Kind("text") for kind in TEXT_TYPES},
    **{kind: Kind("image", kind) for kind in IMAGE_TYPES.values()},
    **{kind: Kind("audio", kind) for kind in AUDIO_TYPES.values()},
    **{kind: Kind("video", kind) for kind in VIDEO_TYPES.values()},
}


def preview_kind(*, name: str, content_type: str) -> Kind:
    """Return the kind of preview a file gets, from its name first, then its stored type."""
    # Every kind is shown safely whatever the bytes are (escaped text, or a type S3 is told to
    # answer with), so the name people see decides; the stored type only helps a bare name.
    ext = posixpath.splitext(name.lower())[1]
    stored = content_type.split(";", 1)[0].strip().lower()
    if ext in EXTENSION_KINDS:
        return EXTENSION_KINDS[ext]
    if posixpath.basename(name.lower()) in TEXT_NAMES:
        return Kind("text")
    if stored in STORED_KINDS:
        return STORED_KINDS[stored]
    return Kind("text") if stored.startswith("text/") else Kind("none")


def object_preview(*, actor: Actor, bucket: str, info: s3.ObjectInfo) -> Preview:
    """Return the preview of a file for someone who may read it (audited as object.preview)."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.preview")
    return _preview(
        actor=actor,
        action="object.preview",
        bucket=bucket,
        key=info.key,
        size=info.size,
        content_type=info.content_type,
        seconds=MEDIA_URL_SECONDS,
        label="",
    )


def link_refusal(link: ShareLink) -> str:
    """Return why a link's page shows no preview, or "" when it may: a preview delivers the file
    (text in full up to its cap, media as a URL), so only a link that lets its recipient download
    freely and silently shows one."""
    if link.max_downloads:
        return (
            "No preview: this link allows a limited number of downloads, "
            "and a preview would deliver the file without counting it."
        )
    if link.notify_on_download:
        return (
            "No preview: the sender asked to be told when the file is downloaded, "
            "and a preview would not tell them."
        )
    return ""


def link_preview(*, actor: Actor, page: LinkPage) -> Preview:
    """Return the preview of a single-file link's file, for a page whose every check has passed."""
    link = page.link
    refusal = link_refusal(link)
    if refusal:
        return Preview(kind="none", reason=refusal)
    # A preview URL never outlives the link it came from.
    left = int((link.expires_at - timezone.now()) / datetime.timedelta(seconds=1))
    return _preview(
        actor=recipient_actor(actor, link.recipient_email),
        action="link.preview",
        bucket=link.bucket,
        key=link.key,
        size=page.size,
        content_type=page.content_type,
        seconds=max(1, min(MEDIA_URL_SECONDS, left)),
        label=f"Link {link.pk}: ",
    )


def _preview(
    *,
    actor: Actor,
    action: str,
    bucket: str,
    key: str,
    size: int,
    content_type: str,
    seconds: int,
    label: str,
) -> Preview:
    name = file_name(key)
    kind = preview_kind(name=name, content_type=content_type)
    if kind.name == "none":
        return Preview(kind="none", reason="No preview for this kind of file: download it.")
    media = kind.name in DIRECTIVE_BY_KIND
    if kind.name in ("image", "svg", "pdf") and size > settings.PREVIEW_MEDIA_MAX_BYTES:
        return Preview(kind="none", reason="This file is too large to preview: download it.")
    read = 0 if media and kind.name != "svg" else min(size, settings.PREVIEW_TEXT_BYTES)
    url, head = "", b""
    try:
        with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
            done = []
            if read:
                head = s3.read_head(bucket, key, size=read)
                done.append(f"first {len(head)} of {size} bytes read")
            if media:
                played = kind.name in ("pdf", "audio", "video")
                url_seconds = seconds if played else min(seconds, IMAGE_URL_SECONDS)
                url = s3.presigned_inline(
                    bucket, key, filename=name, content_type=kind.content_type, seconds=url_seconds
                )
                done.append(f"{url_seconds} s inline URL ({kind.content_type})")
            call.message = f"{label}{', '.join(done) or 'empty file'}."
    except s3.S3Error as error:
        return Preview(kind="none", reason=f"The preview could not be loaded: {error.message}")
    common = {"size": size, "read_bytes": len(head) if read else size, "url": url}
    if media and kind.name != "svg":
        return Preview(kind=kind.name, content_type=kind.content_type, **common)
    text, encoding, note = _decode(head, truncated=len(head) < size)
    common.update(text=text, encoding=encoding, note=note)
    if kind.name == "csv":
        return _table(common, tab=name.lower().endswith(".tsv"), cut=len(head) < size)
    if kind.name == "json":
        return _json(common, cut=len(head) < size)
    if kind.name == "markdown":
        return Preview(kind="markdown", html=markdown_html(text), **common)
    return Preview(kind=kind.name, content_type=kind.content_type, **common)


def _decode(data: bytes, *, truncated: bool) -> tuple[str, str, str]:
    """Return the text, its encoding's name and a note; bytes that are no text become �."""
    if not data:
        return "", "", ""
    try:
        # Valid UTF-8 is UTF-8 (as browsers decide too); the incremental decoder holds back a
        # character cut at the end of the head, which the detector would take for another encoding.
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=not truncated)
        return text.removeprefix("\ufeff"), "utf-8", ""
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        text = data.decode("utf-8", errors="replace")
        return text, "", "Some bytes are not text in any encoding the portal knows: shown as �."
    encoding = best.encoding
    if not encoding.startswith("utf") and encoding != "ascii":
        # Single-byte Western encodings often tie; the web's default for them (WHATWG) wins a tie.
        for match in matches:
            if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.1:
                encoding = "cp1252"
                break
    text = data.decode(encoding, errors="replace").removeprefix("\ufeff")
    if truncated:
        text = text.removesuffix("\ufffd")  # a character cut in two at the end of the head
    return text, encoding, ""


def _table(common: dict, *, tab: bool, cut: bool) -> Preview:
    text = common["text"]
    source = text.rpartition("\n")[0] if cut and "\n" in text else text  # drop a cut last row
    try:
        dialect = csv.Sniffer().sniff(source[:CSV_SNIFF_CHARS], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = "\t" if tab else ","
    try:
        rows = []
        for row in csv.reader(io.StringIO(source), delimiter=delimiter):
            if len(rows) > settings.PREVIEW_CSV_ROWS:
                break
            rows.append(row[:CSV_MAX_COLUMNS])
    except csv.Error as error:
        note = f"This file could not be read as a table ({error}): shown as text."
        return Preview(kind="text", **{**common, "note": note})
    more = len(rows) > settings.PREVIEW_CSV_ROWS or cut
    rows = rows[: settings.PREVIEW_CSV_ROWS]
    if not rows:
        return Preview(kind="text", **common)
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]  # ragged rows still make a table
    return Preview(kind="csv", header=rows[0], rows=rows[1:], more_rows=more, **common)


def _json(common: dict, *, cut: bool) -> Preview:
    try:
        value = json.loads(common["text"])
    except ValueError as error:
        if cut:
            note = "The part read is not complete JSON: shown as text."
        else:
            note = f"This is not valid JSON ({error}): shown as text."
        return Preview(kind="text", **{**common, "note": note})
    except RecursionError:
        return Preview(
            kind="text", **{**common, "note": "This JSON is nested too deeply: shown as text."}
        )
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    return Preview(kind="json", **{**common, "text": pretty})


def markdown_html(text: str) -> SafeString:
    """Return Markdown as HTML: raw HTML in it shown as text, the result cleaned by nh3."""
    renderer = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"])
    for registry, name in MARKDOWN_RAW_HTML:
        getattr(renderer, registry).deregister(name)
    html = renderer.convert(text)
    cleaned = nh3.clean(
        html,
        tags=MARKDOWN_TAGS,
        attributes=MARKDOWN_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 (nh3 kept only the tags and attributes above)
