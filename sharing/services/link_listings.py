"""What the recipient of a folder or selection link sees: its files, a page at a time.

The folder is listed as S3 has it at each visit (link_scopes decides what is shown); each page is
one audited listing. Downloads are counted by link_recipients, like single-file links.
"""

from dataclasses import dataclass, replace

from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import LinkKind, Outcome, ShareLink
from sharing.services import archives, link_recipients, link_scopes
from sharing.services.links import LinkError, record_link_event

PAGE_SIZE = 200
# A selection in a large folder: pages holding none of its keys are skipped, up to this many.
MAX_PAGES_PER_VISIT = 10


@dataclass(frozen=True)
class Entry:
    """A file or sub-folder as the recipient names it: relative to the link."""

    name: str
    relative: str
    size: int = 0


@dataclass(frozen=True)
class Listing:
    """One page of a link's folder: where it is, its sub-folders and files, the next page."""

    path: str
    folders: list[Entry]
    files: list[Entry]
    next_token: str
    crumbs: list[tuple[str, str]]  # (name, path) from the link's top down to `path`


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [part for part in path.split("/") if part]
    return [(part, "/".join(parts[: index + 1]) + "/") for index, part in enumerate(parts)]


def _scoped_folder(*, actor: Actor, link: ShareLink, path: str, action: str) -> str:
    try:
        return link_scopes.scope_folder(link, path)
    except LinkError:
        record_link_event(actor, link, action, Outcome.DENIED, ": outside the link's scope.")
        raise


def link_listing(*, actor: Actor, link: ShareLink, path: str = "", token: str = "") -> Listing:
    """Return one page of what a folder or selection link reaches under `path`, as it is now."""
    prefix = _scoped_folder(actor=actor, link=link, path=path, action="link.list")
    folders: list[Entry] = []
    files: list[Entry] = []
    with audit.s3_call(actor=actor, action="link.list", bucket=link.bucket, key=prefix) as call:
        for _ in range(MAX_PAGES_PER_VISIT):
            page = s3.list_page(link.bucket, prefix=prefix, token=token, size=PAGE_SIZE)
            token = page.next_token
            for folder in page.folders:
                if link_scopes.folder_reaches(link, folder):
                    relative = folder[len(link.key) :]
                    folders.append(Entry(name=folder[len(prefix) :].rstrip("/"), relative=relative))
            for item in page.objects:
                if link_scopes.link_reaches(link, item.key):
                    relative = item.key[len(link.key) :]
                    files.append(Entry(item.key[len(prefix) :], relative=relative, size=item.size))
            if folders or files or not token:
                break
        call.message = f"Link {link.pk}: {len(folders)} folders, {len(files)} files shown."
    return Listing(
        path=prefix[len(link.key) :],
        folders=folders,
        files=files,
        next_token=token,
        crumbs=_crumbs(prefix[len(link.key) :]),
    )


def link_archive(
    *, actor: Actor, token: str, path: str = "", password: str = "", unlocked: bool = False
) -> tuple[Actor, archives.ArchivePlan]:
    """Check the link, plan the ZIP of its folder `path` (or of the whole selection) and count it
    as one download; return the recipient as actor and the plan to stream."""
    action = "link.download"
    link, actor = link_recipients.link_checked(
        actor=actor, token=token, action=action, password=password, unlocked=unlocked
    )
    if link.kind == LinkKind.FILE:
        raise LinkError(link_scopes.OUTSIDE_MESSAGE, status=404)
    prefix = _scoped_folder(actor=actor, link=link, path=path, action=action)
    if link.kind == LinkKind.SELECTION and prefix == link.key:
        chosen = _still_there(actor=actor, link=link)
        plan = archives.archive_plan(actor=actor, bucket=link.bucket, keys=chosen, base=prefix)
    else:
        plan = archives.archive_plan(actor=actor, bucket=link.bucket, prefix=prefix, base=prefix)
    # Only what the link reaches goes into the ZIP (never a key such as "a/../b").
    entries = [entry for entry in plan.entries if link_scopes.link_reaches(link, entry[0])]
    total = sum(size for _, _, size in entries)
    plan = replace(plan, entries=entries, total_bytes=total)
    if not entries:
        raise LinkError("There are no files to download here.", status=404)
    what = f"“Download all” counted: {plan.filename}, {len(entries)} files"
    link_recipients.link_count_download(actor=actor, link=link, key=prefix, what=what)
    return actor, plan


def _still_there(*, actor: Actor, link: ShareLink) -> list[str]:
    """Return the chosen keys that still exist: a selection shows what is left of it."""
    with audit.s3_call(actor=actor, action="link.list", bucket=link.bucket, key=link.key) as call:
        chosen = [
            key for key in link.keys if key.endswith("/") or s3.head(link.bucket, key) is not None
        ]
        call.message = f"Link {link.pk}: {len(chosen)} of {len(link.keys)} chosen items remain."
    return chosen
