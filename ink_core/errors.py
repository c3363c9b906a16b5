"""The one error of a storage operation: an HTTP status and a sentence for the user."""


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
