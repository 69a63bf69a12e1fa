"""Background work through Django's Tasks API (django-tasks): each task is thin and calls a service.

`make run` starts the worker (django-tasks-db's `db_worker`); tests run queued tasks with the
`run_tasks` fixture."""

from django_tasks import task

from sharing.services import folder_jobs, search_index, thumbnails


@task()
def bucket_index(bucket: str) -> int | None:
    """Walk a bucket into its search index (not twice at once); return how many objects it holds."""
    return search_index.bucket_index_walk(bucket=bucket)


@task()
def folder_job_task(job_id: str) -> None:
    """Run a folder copy, move or delete job (resumed where it stopped when run again)."""
    folder_jobs.folder_job_run(job_id=job_id)


@task()
def thumbnail_make(thumbnail_ids: list[int]) -> None:
    """Make the pending thumbnails of these ids."""
    thumbnails.thumbnails_make(thumbnail_ids=thumbnail_ids)


@task()
def thumbnail_files_delete(names: list[str]) -> None:
    """Remove the stored images of forgotten thumbnails."""
    thumbnails.thumbnail_files_delete(names=names)
