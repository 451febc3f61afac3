"""vidmill's exception tree. Every error the engine or a seam raises is one of these.

    VidmillError
    ├── QueryError            a query field is missing or invalid (names the field)
    │   ├── QueryMissing      no query / no {"query": ...} wrapper at all
    │   └── UnsupportedField  a known field whose feature vidmill does not honour yet
    ├── SourceError           the source could not be fetched
    │   ├── UrlRefused        an outbound URL failed the SSRF guard or has an unsupported scheme
    │   │   └── UnresolvedHost  the host name did not resolve (maybe for a moment): retryable
    │   └── SourceTooLarge    the source exceeded the size limit
    ├── ProbeError            the source is not media FFmpeg can read
    ├── EncodeError           FFmpeg exited badly; carries its last meaningful stderr line
    ├── StorageError          outputs could not be stored or published
    ├── NotFound              a key, token, task or profile does not exist (or is another project's)
    ├── Conflict              the request contradicts the current state (a task token started twice)
    ├── LimitExceeded         a size limit or quota refuses the request (an upload over the project's quota)
    └── MailNotSent           an e-mail notification could not be sent (its sender turns it into a SendResult)

API dialects map these to their own error codes in one table each (see ``api/``).
"""

from __future__ import annotations


class VidmillError(Exception):
    """Base of every error vidmill raises on purpose."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class QueryError(VidmillError):
    """A query field is missing or invalid; ``field`` is its dotted path (``format[0].size``)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class UnsupportedField(QueryError):
    """A field of the Qencode vocabulary whose feature is not implemented yet: refused, never ignored."""


class SourceError(VidmillError):
    """The source could not be downloaded (network, HTTP status, timeout)."""


class UrlRefused(SourceError):
    """An outbound URL (source, callback, destination) was refused by the SSRF guard or its scheme."""


class UnresolvedHost(UrlRefused):
    """The host name did not resolve (maybe for a moment): retryable, unlike every other ``UrlRefused``.

    A subclass so that code catching ``UrlRefused`` still refuses the URL; code that retries (the callback
    outbox, start-time URL vetting) tells it apart by type, never by message text.
    """


class SourceTooLarge(SourceError):
    """The source is larger than ``VIDMILL_MAX_SOURCE_BYTES``."""


class ProbeError(VidmillError):
    """The source has no readable media streams."""


class EncodeError(VidmillError):
    """FFmpeg failed; ``message`` is its last meaningful stderr line, ``argv`` what ran."""

    def __init__(self, message: str, argv: list[str] | None = None, returncode: int | None = None):
        super().__init__(message)
        self.argv = argv or []
        self.returncode = returncode


class StorageError(VidmillError):
    """Outputs could not be written to their destination or published."""


class LimitExceeded(VidmillError):
    """A size limit or quota refuses the request, e.g. a direct upload over its project's quota."""


class QueryMissing(QueryError):
    """The request carries no query at all (or not the ``{"query": {...}}`` wrapper)."""


class NotFound(VidmillError):
    """A key, session token, task token or profile does not exist, or belongs to another project."""


class Conflict(VidmillError):
    """The request contradicts the current state, e.g. a task token used for a second start."""


class MailNotSent(VidmillError):
    """The SMTP server could not be reached or refused the message; never carries a credential."""
