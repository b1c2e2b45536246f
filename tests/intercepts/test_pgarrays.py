"""Long lists sent as one array parameter: every value arrives as it was, on either database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from couriers.stages import ParcelStage
from intercepts.models import Parcel
from intercepts.pgarrays import array_literal
from tests.factories import ParcelFactory

needs_postgresql = pytest.mark.postgres


# Any text PostgreSQL can hold (it cannot hold NUL).
TEXTS = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


def _texts_back(values):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x FROM unnest(%s::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
            [array_literal(values)],
        )
        return [row[0] for row in cursor.fetchall()]


@needs_postgresql
@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXTS), max_size=8))
def test_any_text_comes_back_unchanged(values):
    assert _texts_back(values) == values


@needs_postgresql
@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
@given(st.lists(TEXTS, max_size=8))
def test_a_column_of_texts_comes_back_unchanged(values):
    # Texts without NULL values take the one-pass escape; the lists above mostly take one call
    # per element.
    assert _texts_back(values) == values


@needs_postgresql
@pytest.mark.django_db
def test_numbers_stages_and_times_come_back_unchanged():
    numbers = [0, -7, 10**15]
    stages = [ParcelStage.DELIVERED, ParcelStage.IN_TRANSIT]
    moments = [
        datetime(2026, 11, 20, 8, 5, 9, 123456, tzinfo=UTC),
        datetime(2026, 11, 20, 16, 5, tzinfo=timezone(timedelta(hours=8))),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::bigint[])", [array_literal(numbers)])
        assert [row[0] for row in cursor.fetchall()] == numbers
        cursor.execute("SELECT unnest(%s::varchar[])", [array_literal(iter(stages))])
        assert [row[0] for row in cursor.fetchall()] == stages
        cursor.execute("SELECT unnest(%s::timestamptz[])", [array_literal(moments)])
        assert [row[0] for row in cursor.fetchall()] == moments
    assert array_literal([]) == "{}"


@needs_postgresql
@pytest.mark.django_db
def test_times_come_back_as_the_same_instants():
    moments = [datetime(2026, 11, 20, 8, 5, 9, 123456, tzinfo=UTC), None]
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [array_literal(moments)])
        assert [row[0] for row in cursor.fetchall()] == moments


@pytest.mark.django_db
def test_the_any_lookup_finds_what_in_finds():
    parcels = ParcelFactory.create_batch(4)
    wanted = [parcels[0].pk, parcels[2].pk, 10**12]
    assert set(Parcel.objects.filter(pk__any=wanted)) == set(Parcel.objects.filter(pk__in=wanted))
    numbers = [parcels[1].waybill_no, 'x"y\\z,{}']
    assert list(Parcel.objects.filter(waybill_no__any=numbers)) == [parcels[1]]
    assert not Parcel.objects.filter(pk__any=[]).exists()
