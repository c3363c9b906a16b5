"""The one error with an HTTP status and a sentence for the user: a storage operation refused
(the workers, the file service), a share link refused. Services answer it as that status."""


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
