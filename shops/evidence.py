"""Evidence files (photos and PDFs), judged by what the bytes are, never by the file's name.

``filetype`` reads the file's signature; a photo must then open as the image it claims to be
(Pillow checks its structure), a PDF must start and end as one. A program renamed ``.jpg`` or a
web page renamed ``.pdf`` is refused, as are empty and oversized files. Every file is checked
before anything is stored, so a refusal leaves nothing behind. Used by claims and by the
merchants' answers to shipment anomalies; each passes its own limits.

The limits: ``EVIDENCE_MAX_BYTES`` and ``EVIDENCE_MAX_FILES`` (settings), which the claims'
older ``CLAIM_EVIDENCE_MAX_BYTES`` / ``_FILES`` default to.
"""

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

# What evidence may be: the detected type and the extension the stored file gets.
ACCEPTED_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}
# Shown in the browser when downloaded; anything else (a PDF) is an attachment, never rendered
# on our origin.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Signature bytes are at the start; this many is more than any of them needs.
HEAD_BYTES = 8192
# The image formats Pillow names for the types above.
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Far larger than any phone photo; a decompression bomb is refused as broken.
MAX_IMAGE_PIXELS = 80_000_000


@dataclass(frozen=True)
class CheckedFile:
    upload: UploadedFile
    name: str
    content_type: str
    extension: str
    size: int
    sha256: str


def max_bytes() -> int:
    return settings.EVIDENCE_MAX_BYTES


def max_files() -> int:
    return settings.EVIDENCE_MAX_FILES


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f}"


def _read_all(upload: UploadedFile) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


def _pdf_ok(data: bytes) -> bool:
    # A PDF starts with its header and ends with its end-of-file marker (trailing whitespace
    # and a few bytes of padding are common).
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def _image_ok(data: bytes, content_type: str) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != PILLOW_FORMATS[content_type]:
                return False
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return False
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def check_file(upload: UploadedFile, *, limit_bytes: int | None = None) -> CheckedFile:
    """The file's detected type, size and digest; a ``ValidationError`` in the user's words if
    it is not a photo or PDF of at most ``limit_bytes`` (default ``max_bytes()``)."""
    limit_bytes = max_bytes() if limit_bytes is None else limit_bytes
    name = (upload.name or "").rsplit("/", 1)[-1][:200] or "evidence"
    size = upload.size or 0
    if size == 0:
        raise ValidationError(
            _("“%(name)s” is empty (0 bytes); choose the photo or PDF again.") % {"name": name},
            code="empty",
        )
    if size > limit_bytes:
        raise ValidationError(
            _("“%(name)s” is too large: a file may be at most %(limit)s MB.")
            % {"name": name, "limit": megabytes(limit_bytes)},
            code="too_large",
        )
    data = _read_all(upload)
    if len(data) != size:  # a declared size that is not the real one
        raise ValidationError(_("“%(name)s” could not be read.") % {"name": name}, code="unread")
    kind = filetype.guess(data[:HEAD_BYTES])
    content_type = kind.mime if kind is not None else ""
    if content_type not in ACCEPTED_TYPES:
        raise ValidationError(
            _(
                "“%(name)s” is not a photo (JPEG, PNG, WebP) or a PDF, whatever its name says; "
                "only those can be sent as evidence."
            )
            % {"name": name},
            code="type",
        )
    well_formed = (
        _pdf_ok(data) if content_type == "application/pdf" else _image_ok(data, content_type)
    )
    if not well_formed:
        raise ValidationError(
            _("“%(name)s” is damaged or incomplete and cannot be opened.") % {"name": name},
            code="broken",
        )
    return CheckedFile(
        upload=upload,
        name=name,
        content_type=content_type,
        extension=ACCEPTED_TYPES[content_type],
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _too_many(limit: int, already: int, adding: int) -> str:
    return _("At most %(limit)s files can be sent; %(adding)s were chosen.") % {
        "limit": limit,
        "adding": adding,
    }


def check_files(
    uploads,
    *,
    limit_files: int | None = None,
    limit_bytes: int | None = None,
    already: int = 0,
    too_many: Callable[[int, int, int], str] = _too_many,
) -> list[CheckedFile]:
    """Check every file, and how many the record would then hold (``already`` plus these);
    all the refusals at once. ``too_many(limit, already, adding)`` words the count's refusal."""
    uploads = list(uploads)
    limit_files = max_files() if limit_files is None else limit_files
    if already + len(uploads) > limit_files:
        raise ValidationError(too_many(limit_files, already, len(uploads)), code="too_many")
    checked, errors = [], []
    for upload in uploads:
        try:
            checked.append(check_file(upload, limit_bytes=limit_bytes))
        except ValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    return checked


def save_files(checked: list[CheckedFile], *, new_row, actor, stored: list[str]) -> list:
    """Write each checked file with its evidence row, in the caller's transaction: ``new_row``
    makes the row of its record from the file's name, type, size, digest and uploader. The
    stored names are appended to ``stored`` as they are written, so that the caller deletes
    them if its transaction does not commit."""
    rows = []
    for item in checked:
        row = new_row(
            original_name=item.name,
            content_type=item.content_type,
            size=item.size,
            sha256=item.sha256,
            uploaded_by=actor,
        )
        item.upload.seek(0)
        row.file.save(f"evidence{item.extension}", item.upload, save=False)
        stored.append(row.file.name)
        row.save()
        rows.append(row)
    return rows


def file_response(item):
    """An evidence row's file for the browser of someone who may see it: photos shown, the
    rest downloaded, never cached, never sniffed, and no page of ours (no scripts, no forms,
    its own origin). A file gone from storage is not found."""
    from django.http import FileResponse, Http404

    try:
        handle = item.file.storage.open(item.file.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle,
        content_type=item.content_type,
        as_attachment=item.content_type not in INLINE_TYPES,
        filename=item.original_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response
