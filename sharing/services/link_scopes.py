"""Which keys a share link reaches: the one rule, asked by every recipient page and download.

A FILE link reaches its one key. A FOLDER link reaches everything under its prefix (which ends
with "/", or is "" for the whole bucket) *as the folder is at each visit*: files added later
appear, deleted ones vanish. A SELECTION link reaches exactly its chosen keys that still exist,
and everything under the chosen sub-folders (keys ending with "/"), again as they are at each visit.

Recipients name a file or folder relative to the link. A name is normalised once (Unicode NFC)
and refused when it could climb out or alias another key: empty, "." or ".." parts ("a//b",
"a/./b", "../"), a leading "/", backslashes, control characters, and parts that still read "."
or ".." once percent-decoded (Django decodes a query once: "%2e%2e" arrives as "..", and a
doubly-encoded "%252e%252e" arrives as "%2e%2e", refused here too). Prefixes are compared with
their trailing "/", so a link to "photos/" never reaches "photos-private/x" nor "photos" itself.
"""

from dataclasses import dataclass
from urllib.parse import unquote

from sharing import audit, keys, s3
from sharing.audit import Actor
from sharing.models import LinkKind, ShareLink
from sharing.services import links as link_services

MAX_SELECTION_KEYS = 200  # each chosen file is checked in S3 when the link is made
OUTSIDE_MESSAGE = "This link does not include that file or folder."


@dataclass(frozen=True)
class Target:
    """What a new link will share, checked in S3: its kind, key, chosen keys and a file's size."""

    kind: str
    key: str
    keys: list[str]
    size: int | None  # a file's size; None for a folder or a selection


def relative_problem(relative: str, *, folder: bool) -> str | None:
    """Return why a name relative to a link is refused, or None; folder names end with "/"."""
    if relative != keys.normalize_key(relative):
        return "The name is not in normal (NFC) form."
    problem = keys.key_problem(relative, folder=folder)
    if problem:
        return problem
    for segment in relative.rstrip("/").split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return "A path must not contain “.” or “..” parts, even percent-encoded."
    return None


def _chosen_folders(link: ShareLink) -> list[str]:
    return [key for key in link.keys if key.endswith("/")]


def link_reaches(link: ShareLink, key: str) -> bool:
    """Return whether the link gives its recipient the file `key` (a full key)."""
    if link.kind == LinkKind.FILE:
        return key == link.key
    if not _is_prefix(link.key) or not key.startswith(link.key) or key.endswith("/"):
        return False
    if relative_problem(key[len(link.key) :], folder=False):
        return False
    if link.kind == LinkKind.FOLDER:
        return True
    return key in link.keys or any(key.startswith(folder) for folder in _chosen_folders(link))


def folder_reaches(link: ShareLink, prefix: str) -> bool:
    """Return whether the recipient may list the folder `prefix` (a full prefix ending "/")."""
    if link.kind == LinkKind.FILE or not _is_prefix(link.key) or not _is_prefix(prefix):
        return False
    if not prefix.startswith(link.key):
        return False
    relative = prefix[len(link.key) :]
    if relative and relative_problem(relative, folder=True):
        return False
    if link.kind == LinkKind.FOLDER or not relative:
        return True
    return any(prefix.startswith(folder) for folder in _chosen_folders(link))


def _is_prefix(prefix: str) -> bool:
    return prefix == "" or prefix.endswith("/")


def _outside() -> Exception:
    return link_services.LinkError(OUTSIDE_MESSAGE, status=404)


def scope_key(link: ShareLink, relative: str) -> str:
    """Return the full key of a file named relative to the link, or raise LinkError (404)."""
    if link.kind == LinkKind.FILE:
        if relative:
            raise _outside()
        return link.key
    relative = keys.normalize_key(relative)
    key = link.key + relative
    if relative_problem(relative, folder=False) or not link_reaches(link, key):
        raise _outside()
    return key


def scope_folder(link: ShareLink, path: str) -> str:
    """Return the full prefix of a folder named relative to the link ("" its top), or raise."""
    path = keys.normalize_key(path)
    if path and not path.endswith("/"):
        path += "/"
    prefix = link.key + path
    if link.kind == LinkKind.FILE or not folder_reaches(link, prefix):
        raise _outside()
    return prefix


def link_what(link: ShareLink) -> str:
    """Return what a link shares, as a sentence says it: "a file", "a folder", "3 files"."""
    if link.kind == LinkKind.FOLDER:
        return "a folder"
    if link.kind == LinkKind.SELECTION:
        count = len(link.keys)
        noun = "item" if _chosen_folders(link) else "file"  # chosen sub-folders hold more
        return f"{count} {noun}{'' if count == 1 else 's'}"
    return "a file"


def link_label(link: ShareLink) -> str:
    """Return the kind shown in lists: "File", "Folder" or "N files"."""
    if link.kind == LinkKind.FILE:
        return "File"
    return link_what(link).removeprefix("a ").capitalize()


def target_check(
    *, actor: Actor, action: str, bucket: str, kind: str, key: str, chosen: list[str]
) -> Target:
    """Check what a new link would share (names, then existence in S3, audited)."""
    refusal = {"actor": actor, "action": action, "bucket": bucket, "key": key}
    with audit.refusals(**refusal, errors=link_services.LinkError):
        problem = target_problem(kind=kind, key=key, chosen=chosen)
        if problem:
            raise link_services.LinkError(problem)
    if kind == LinkKind.FILE:
        info = link_services.head_for_sharing(actor=actor, action=action, bucket=bucket, key=key)
        return Target(kind=kind, key=key, keys=[], size=info.size)
    with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
        missing = target_missing(bucket=bucket, kind=kind, key=key, chosen=chosen)
        if missing:
            raise link_services.LinkError(missing, status=404)
        call.message = f"A {kind} of {len(chosen) or 'all its'} item(s) checked."
    return Target(kind=kind, key=key, keys=chosen, size=None)


def target_problem(*, kind: str, key: str, chosen: list[str]) -> str | None:
    """Return why a link's target is refused before asking S3 (names and counts), or None."""
    if kind not in LinkKind.values:
        return "Choose a file, a folder or a selection to share."
    if kind == LinkKind.FILE:
        return "A link to one file has no chosen keys." if chosen else None
    if not _is_prefix(key) or (key and keys.key_problem(key, folder=True)):
        return "This folder's name cannot be shared by link."
    if kind == LinkKind.FOLDER:
        return "A link to a folder has no chosen keys." if chosen else None
    if not chosen:
        return "Select at least one file or folder."
    if len(chosen) > MAX_SELECTION_KEYS:
        return f"A link can share at most {MAX_SELECTION_KEYS} selected files and folders."
    for full in chosen:
        relative = full[len(key) :] if full.startswith(key) else ""
        folder = relative.endswith("/")
        if not relative or "/" in relative.rstrip("/") or relative_problem(relative, folder=folder):
            return f"“{full[:200]}” is not a file or folder of this folder."
    return None


def target_missing(*, bucket: str, kind: str, key: str, chosen: list[str]) -> str | None:
    """Return what of a link's target no longer exists in S3 (a message), or None."""
    if kind == LinkKind.FILE:
        return None if s3.head(bucket, key) is not None else s3.MESSAGES["NoSuchKey"]
    for prefix in [key] if kind == LinkKind.FOLDER else chosen:
        if prefix.endswith("/") or kind == LinkKind.FOLDER:
            page = s3.list_page(bucket, prefix=prefix, size=1)
            exists = bool(page.objects or page.folders)
        else:
            exists = s3.head(bucket, prefix) is not None
        if not exists:
            name = prefix[len(key) :] or prefix or bucket
            return f"“{name[:200]}” is empty or no longer exists."
    return None
