"""Status history: the one shape every record's history takes, and the one guarded move.

A record with a status (an after-sale, an intercept request, a fee hold, a top-up, an
adjustment, an invoice, an export) keeps its ``TRANSITIONS`` next to its ``Status`` and an
append-only history model built on ``StatusHistory`` with ``related_name="events"``. Its
``<thing>_set_status`` service moves it with ``status_transition``, which refuses what the
lifecycle does not allow, does nothing when the status is already the target, updates
conditionally on the status it read and writes the history row in the same transaction.
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StatusHistory(models.Model):
    """One row per status change (or note that moves nothing) of a record, oldest first.

    A subclass adds the foreign key to its record (``related_name="events"``) and its status
    fields with the record's labels: ``from_status, to_status = status_fields(Record.Status)``.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # users are deactivated, not deleted: nobody looks history up by user
        related_name="+",
        verbose_name=_("by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        abstract = True
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.from_status or '-'} → {self.to_status}"


def status_fields(status: type[models.TextChoices]) -> tuple[models.CharField, models.CharField]:
    """The ``from_status`` and ``to_status`` fields of a history, labelled by ``status``."""
    return (
        models.CharField(_("from"), max_length=16, choices=status.choices, blank=True),
        models.CharField(_("to"), max_length=16, choices=status.choices),
    )


def status_transition(
    record: models.Model,
    *,
    to_status: str,
    refuse: Callable[[str], Exception] | None,
    actor=None,
    note: str = "",
    from_statuses: Iterable[str] | None = None,
    event: dict | None = None,
    **fields,
) -> bool:
    """Move ``record`` to ``to_status`` with its history row; True if this call moved it.

    False, changing nothing, when the record is already in ``to_status`` (a repeat, unless its
    ``TRANSITIONS`` let that status move to itself) or, given
    ``from_statuses``, no longer in one of them (someone else moved it first). A move its
    model's ``TRANSITIONS`` does not allow raises ``refuse(current_status)``, or returns False
    when ``refuse`` is None. The update is conditional on the status read: if another
    transaction moved the record meanwhile, its new status is read and judged again. ``fields``
    are written with the status; ``event`` holds extra columns of the history row.
    """
    model = type(record)
    allowed_from = None if from_statuses is None else frozenset(from_statuses)
    illegal_from = None
    # No savepoint (a round trip each way on every move): a refusal is raised once the block is
    # left, having written nothing, so the caller's transaction stays usable.
    with transaction.atomic(savepoint=False):
        while True:
            current = record.status
            # Already there is a repeat, unless the lifecycle lets the status start over (a
            # build whose worker died, delivered again).
            repeat = current == to_status and to_status not in model.TRANSITIONS[current]
            if repeat or (allowed_from is not None and current not in allowed_from):
                return False
            if to_status not in model.TRANSITIONS[current]:
                illegal_from = current
                break
            if model._default_manager.filter(pk=record.pk, status=current).update(
                status=to_status, **fields
            ):
                record.events.create(
                    from_status=current,
                    to_status=to_status,
                    actor=actor,
                    note=note[:255],
                    **(event or {}),
                )
                break
            # Another transaction moved it meanwhile (and has committed): judge again.
            record.status = model._default_manager.values_list("status", flat=True).get(
                pk=record.pk
            )
    if illegal_from is not None:
        if refuse is None:
            return False
        raise refuse(illegal_from)
    record.status = to_status
    for name, value in fields.items():
        setattr(record, name, value)
    return True
