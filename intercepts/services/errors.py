"""The errors services raise for the user to read."""


class DomainError(Exception):
    """A business rule refused the write; the message is for the user."""


class IneligibleError(DomainError):
    """The rules refuse the intercept; ``results`` holds every rule's answer for the page."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results
