"""Park-model validation of the accounting fields of a meter: parent, direction, counted."""

from __future__ import annotations

from pathlib import Path

from lingtan.park.loader import parse_park
from tests.test_park_model import SMALL_PARK, expect_error, line_of, mutate


def test_parent_and_direction_load(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: steam\n", "      carrier: steam\n      direction: out\n"),
                  ("      carrier: natural_gas\n", "      carrier: natural_gas\n      counted: false\n"))
    park = parse_park(text, tmp_path / "p.yaml")
    meters = {m.id: m for e in park.enterprises for u in e.units for m in u.meters}
    assert meters["m-steam"].direction.value == "out" and meters["m-gas"].counted is False


def test_unknown_parent(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: natural_gas\n", "      carrier: natural_gas\n      parent: m-gas-main\n"))
    expect_error(tmp_path, text, line=line_of(text, "parent: m-gas-main"), field="enterprises[0].units[0].meters[1].parent",
                 contains=("unknown parent meter", "'m-gas-main'"))


def test_parent_of_another_carrier(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: steam\n", "      carrier: steam\n      parent: m-gas\n"))
    expect_error(tmp_path, text, line=line_of(text, "parent: m-gas"), field="enterprises[0].units[0].meters[2].parent",
                 contains=("(steam)", "cannot be a sub-meter of", "'m-gas' (natural_gas)"))


def test_parent_loop(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: natural_gas\n", "      carrier: natural_gas\n      parent: m-gas\n"))
    expect_error(tmp_path, text, line=line_of(text, "parent: m-gas"), field="enterprises[0].units[0].meters[1].parent",
                 contains=("loops back", "'m-gas'"))


def test_direction_on_an_electricity_meter(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: electricity\n", "      carrier: electricity\n      direction: out\n"))
    expect_error(tmp_path, text, line=line_of(text, "direction: out"), field="enterprises[0].units[0].meters[0].direction",
                 contains=("roles of its points",))


def test_bad_direction_value(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: steam\n", "      carrier: steam\n      direction: sideways\n"))
    expect_error(tmp_path, text, line=line_of(text, "direction: sideways"),
                 field="enterprises[0].units[0].meters[2].direction", contains=("'sideways'",))
