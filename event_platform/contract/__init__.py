"""Stream contracts. The default stream is `events`; add a stream by adding a module."""

from event_platform.contract.events import EVENTS_CONTRACT
from event_platform.contract.spec import FieldSpec, StreamContract

__all__ = ["EVENTS_CONTRACT", "FieldSpec", "StreamContract"]
