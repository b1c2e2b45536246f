"""The photos and PDFs a merchant sends with an answer to a shipment anomaly.

Checked by ``shops.evidence`` (by the bytes, never the file's name) against the generic limits
``EVIDENCE_MAX_BYTES`` and ``EVIDENCE_MAX_FILES``, all before anything is written; stored through
the evidence field's storage (private: served only by the anomaly's own page). A file written
for a transaction that then rolls back is deleted again, so a refusal leaves nothing behind.
"""

import contextlib
import contextvars
import logging

from django.db import transaction
from django.utils.translation import gettext as _

from intercepts.models import ShipmentAnomaly, ShipmentAnomalyEvidence
from shops import evidence as checks
from shops.evidence import CheckedFile

logger = logging.getLogger(__name__)

# The names written inside ``discard_on_rollback``: deleted if its block fails.
_written: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "anomaly_evidence_written", default=None
)


def _too_many(limit: int, already: int, adding: int) -> str:
    return _("An answer holds at most %(limit)s files; %(adding)s were chosen.") % {
        "limit": limit,
        "adding": adding,
    }


def evidence_check(files) -> list[CheckedFile]:
    """Every file checked, or a ``ValidationError`` with a line per refused file; nothing is
    written either way."""
    return checks.check_files(files or [], already=0, too_many=_too_many)


def _discard(names: list[str]) -> None:
    storage = ShipmentAnomalyEvidence._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # the row is gone either way; a stray file is only logged
            logger.exception("Could not delete the anomaly evidence file %s", name)


@contextlib.contextmanager
def discard_on_rollback():
    """Around a transaction that stores evidence: if the block fails (its transaction rolled
    back, the commit included), the files written in it are deleted again."""
    written: list[str] = []
    token = _written.set(written)
    try:
        yield
    except BaseException:
        _discard(written)
        raise
    finally:
        _written.reset(token)


def evidence_store(*, anomaly: ShipmentAnomaly, files: list[CheckedFile], actor) -> list:
    """Store the checked files as the anomaly's evidence, in the caller's transaction. A failure
    here deletes what this call wrote; inside ``discard_on_rollback`` a later failure of the
    caller's transaction does too."""
    written: list[str] = []
    try:
        with transaction.atomic():
            rows = checks.save_files(
                files,
                new_row=lambda **fields: ShipmentAnomalyEvidence(anomaly=anomaly, **fields),
                actor=actor,
                stored=written,
            )
    except BaseException:
        _discard(written)
        raise
    outer = _written.get()
    if outer is not None:
        outer.extend(written)
    return rows
