"""What services raise when they refuse a request, as opposed to `s3.S3Error` (storage failed)."""


class ServiceError(Exception):
    """A refused request, with a message for people and the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
