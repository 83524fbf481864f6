"""The park model and its loader."""

from lingtan.park.loader import ParkModelError, load_park, parse_park
from lingtan.park.model import Enterprise, Meter, Park, Point, ProductionUnit, Protocol

__all__ = ["Enterprise", "Meter", "Park", "ParkModelError", "Point", "ProductionUnit", "Protocol", "load_park", "parse_park"]
