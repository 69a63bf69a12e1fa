"""What services raise when they refuse a request, as opposed to `s3.S3Error` (storage failed)."""

# What people read when the database cannot be reached or stays locked (pages and JSON alike).
DATABASE_UNAVAILABLE = (
    "The portal's database is busy or cannot be reached right now. Try again in a minute."
)


class ServiceError(Exception):
    """A refused request, with a message for people and the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
