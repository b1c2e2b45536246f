"""Plain data the courier adapters return; no model of any app crosses this boundary."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TrackingScan:
    """One tracking event as a courier reports it, with its unified stage."""

    waybill_no: str
    occurred_at: datetime
    raw_code: str
    stage: str
    description: str = ""
    location: str = ""
