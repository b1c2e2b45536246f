"""The unified stage: progress only forward, the named exceptions, and order independence."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couriers.stages import (
    STAGE_RANK,
    TERMINAL_STAGES,
    ParcelStage,
    stage_after,
    stage_from_events,
    stage_label,
    stage_with_arrivals,
)

S = ParcelStage
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_every_stage_has_a_rank():
    assert set(STAGE_RANK) == set(ParcelStage)


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (S.PICKED_UP, S.IN_TRANSIT, S.IN_TRANSIT),
        (S.OUT_FOR_DELIVERY, S.IN_TRANSIT, S.OUT_FOR_DELIVERY),  # never backwards
        (S.DELIVERED, S.OUT_FOR_DELIVERY, S.DELIVERED),  # terminal
        (S.DELIVERED, S.RETURNING, S.RETURNING),  # a return scan after delivery
        (S.RETURNED, S.RETURNING, S.RETURNED),
        (S.REDIRECTING, S.IN_TRANSIT, S.IN_TRANSIT),  # on its way to the new address
        (S.REDIRECTING, S.DELIVERED, S.DELIVERED),
        (S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY, S.OUT_FOR_DELIVERY),  # a second attempt
        (S.IN_TRANSIT, S.EXCEPTION, S.EXCEPTION),
        (S.EXCEPTION, S.AT_DELIVERY_STATION, S.AT_DELIVERY_STATION),
        (S.DELIVERED, S.EXCEPTION, S.DELIVERED),
        (S.IN_TRANSIT, S.INTERCEPTED, S.INTERCEPTED),
        (S.INTERCEPTED, S.RETURNING, S.RETURNING),
        (S.RETURNING, S.RETURNED, S.RETURNED),
        (S.INTERCEPTED, S.DELIVERED, S.INTERCEPTED),
    ],
)
def test_stage_after(current, new, expected):
    assert stage_after(current, new) == expected


def test_terminal_stages_stay_except_a_return_after_delivery():
    for terminal in TERMINAL_STAGES:
        for new in ParcelStage:
            result = stage_after(terminal, new)
            if (terminal, new) == (S.DELIVERED, S.RETURNING):
                assert result == S.RETURNING
            else:
                assert result == terminal, (terminal, new)


def test_a_late_event_is_kept_but_does_not_move_the_stage_back():
    history = [(at(1), S.PICKED_UP), (at(5), S.OUT_FOR_DELIVERY)]
    stage, latest = stage_with_arrivals(
        current=S.OUT_FOR_DELIVERY,
        latest_at=at(5),
        history=history,
        arrived=[(at(3), S.IN_TRANSIT)],
    )
    assert (stage, latest) == (S.OUT_FOR_DELIVERY, at(5))


def test_a_redirected_parcel_is_delivered_at_its_new_address():
    events = [
        (at(1), S.PICKED_UP),
        (at(2), S.REDIRECTING),
        (at(3), S.IN_TRANSIT),
        (at(9), S.DELIVERED),
    ]
    assert stage_from_events(events) == S.DELIVERED


def test_stage_labels_follow_the_language():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert stage_label(S.OUT_FOR_DELIVERY) == "派送中"
    with translation.override("en"):
        assert stage_label(S.OUT_FOR_DELIVERY) == "Out for delivery"


events_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=40).map(at), st.sampled_from(list(ParcelStage))),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(events=events_strategy, data=st.data())
def test_any_arrival_order_gives_the_stage_of_the_events_in_time_order(events, data):
    arrival = data.draw(st.permutations(events))
    sizes = data.draw(st.lists(st.integers(min_value=1, max_value=4), min_size=len(events)))
    stage, latest, history = ParcelStage.NO_INFO, None, []
    position = 0
    for size in sizes:
        batch = arrival[position : position + size]
        if not batch:
            break
        stage, latest = stage_with_arrivals(
            current=stage, latest_at=latest, history=history, arrived=batch
        )
        history.extend(batch)
        position += size
    assert position >= len(arrival)
    assert stage == stage_from_events(events)
    assert latest == max(t for t, _ in events)


# Stages in the named moves to a lower rank (a redirect restarts the way to a receiver, a
# failed delivery is attempted again, a problem is left by the next scan, a delivered parcel
# comes back): without them, progress only ever goes forward.
_MOVES_BACK = {S.REDIRECTING, S.DELIVERY_FAILED, S.EXCEPTION, S.STALE, S.RETURNING}
plain_stages = [stage for stage in S if stage not in _MOVES_BACK]
plain_events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=40).map(at), st.sampled_from(plain_stages)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(
    events=plain_events, late=st.tuples(st.integers(0, 40).map(at), st.sampled_from(plain_stages))
)
def test_a_late_arrival_never_moves_the_stage_back(events, late):
    stage = stage_from_events(events)
    latest = max(t for t, _ in events)
    if late[0] >= latest:
        return
    after, _ = stage_with_arrivals(current=stage, latest_at=latest, history=events, arrived=[late])
    # The one exception: a late final scan (delivered, cancelled ...) that happened before the
    # other scans is the parcel's real end, whatever arrived first.
    assert STAGE_RANK[after] >= STAGE_RANK[stage] or after in TERMINAL_STAGES, (stage, after)
