"""Claim evidence: photos and PDFs, checked by ``shops.evidence`` (by what the bytes are, never
by the file's name) against the claims' own limits, ``CLAIM_EVIDENCE_MAX_BYTES`` and
``CLAIM_EVIDENCE_MAX_FILES``. Every file is checked before anything is stored, so a refusal
leaves nothing behind.
"""

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from shops import evidence as checks
from shops.evidence import ACCEPTED_TYPES, INLINE_TYPES, CheckedFile

__all__ = ["ACCEPTED_TYPES", "INLINE_TYPES", "CheckedFile", "check_file", "check_files"]


def max_bytes() -> int:
    return settings.CLAIM_EVIDENCE_MAX_BYTES


def max_files() -> int:
    return settings.CLAIM_EVIDENCE_MAX_FILES


def check_file(upload: UploadedFile) -> CheckedFile:
    """The file's detected type, size and digest; a ``ValidationError`` in the user's words if
    it is not a photo or PDF that a claim takes."""
    return checks.check_file(upload, limit_bytes=max_bytes())


def _too_many(limit: int, already: int, adding: int) -> str:
    return _(
        "A claim holds at most %(limit)s files; it has %(already)s and %(adding)s were added."
    ) % {"limit": limit, "already": already, "adding": adding}


def check_files(uploads, *, already: int = 0) -> list[CheckedFile]:
    """Check every file, and how many a claim would then hold; all the refusals at once."""
    return checks.check_files(
        uploads,
        limit_files=max_files(),
        limit_bytes=max_bytes(),
        already=already,
        too_many=_too_many,
    )
