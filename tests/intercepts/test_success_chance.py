"""The chance of success shown before an intercept: the default table by stage until the
platform has 30 finished intercepts of that courier at that stage, then its own rate."""

import pytest

from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.models import InterceptRequest
from intercepts.selectors import MIN_OWN_OUTCOMES, intercept_success_chance
from tests.factories import ParcelFactory

S = InterceptRequest.Status


def _outcomes(world, courier, stage, statuses):
    # History as the lifecycle leaves it; written directly, as only finished rows are counted.
    for status in statuses:
        parcel = ParcelFactory(courier=courier, order=world.after_sale_a.order)
        InterceptRequest.objects.create(
            shop=world.shop_a,
            parcel=parcel,
            action=InterceptRequest.Action.RETURN,
            channel=InterceptRequest.Channel.WORKBENCH,
            stage_at_request=stage,
            status=status,
            fee_fen=300,
        )


@pytest.mark.django_db
def test_the_default_table_until_there_are_enough_outcomes(world):
    zto = Courier.objects.get(code="ZTO")
    _outcomes(world, zto, ParcelStage.IN_TRANSIT, [S.FAILED] * (MIN_OWN_OUTCOMES - 1))
    chance = intercept_success_chance(courier_id=zto.pk, stage=ParcelStage.IN_TRANSIT)
    assert (chance.probability, chance.from_own_outcomes, chance.outcomes) == (0.88, False, 29)
    assert intercept_success_chance(courier_id=zto.pk, stage=ParcelStage.DELIVERED).probability == 0


@pytest.mark.django_db
def test_own_outcomes_of_that_courier_and_stage_once_there_are_30(world):
    zto, yto = Courier.objects.get(code="ZTO"), Courier.objects.get(code="YTO")
    _outcomes(world, zto, ParcelStage.AT_DELIVERY_STATION, [S.SUCCEEDED] * 20 + [S.COMPLETED] * 4)
    _outcomes(world, zto, ParcelStage.AT_DELIVERY_STATION, [S.REJECTED] * 3 + [S.FAILED] * 3)
    # Not counted: withdrawn or unfinished ones, other stages, other couriers.
    _outcomes(world, zto, ParcelStage.AT_DELIVERY_STATION, [S.CANCELLED] * 5 + [S.SUBMITTED])
    _outcomes(world, zto, ParcelStage.IN_TRANSIT, [S.FAILED] * 5)
    _outcomes(world, yto, ParcelStage.AT_DELIVERY_STATION, [S.FAILED] * 40)
    chance = intercept_success_chance(courier_id=zto.pk, stage=ParcelStage.AT_DELIVERY_STATION)
    assert (chance.probability, chance.from_own_outcomes, chance.outcomes) == (0.8, True, 30)
    yto_chance = intercept_success_chance(courier_id=yto.pk, stage=ParcelStage.AT_DELIVERY_STATION)
    assert (yto_chance.probability, yto_chance.from_own_outcomes) == (0.0, True)
