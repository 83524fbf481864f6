"""The factor library: provenance on every entry, unit checks, and resolution order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lingtan.park.carriers import Carrier
from lingtan_calc.core.accounting.convert import AccountingOptions, coal_equivalent
from lingtan_calc.core.accounting.factors import (
    DATA_DIR,
    Factor,
    FactorLibrary,
    FactorNotFound,
    load_factor_file,
)
from lingtan_calc.core.units import UnitMismatch, multiplier

D = dt.date(2026, 6, 1)


def override(**kw) -> Factor:
    base = dict(id="park.x", kind="ncv", subject="natural_gas", value=36.0, unit="MJ/m3", valid_from="2026-01-01",
                source={"document": "供气合同 气质报告", "edition": "2026-05", "clause": "低位发热量"},
                confidence="measured monthly by the supplier", override=True, author="energy.manager",
                reason="supplier's measured NCV")
    base.update(kw)
    return Factor.model_validate(base)


def test_every_shipped_factor_has_a_source_and_confidence():
    lib = FactorLibrary.shipped()
    assert len(lib) >= 60
    files = sorted(p.name for p in DATA_DIR.glob("*.yaml"))
    assert "gbt2589_2020.yaml" in files and "mee_grid.yaml" in files
    for f in lib:
        assert f.source.document and f.source.edition and f.confidence, f.id


def test_identities_from_the_reference():
    lib = FactorLibrary.shipped()
    assert lib["gbt2589.electricity.dangliang"].value == pytest.approx(860 / 7000, abs=5e-5)
    assert lib["gbt2589.heat.dangliang"].value == pytest.approx(1000 / 29307, abs=5e-6)


def test_a_kwh_never_meets_a_kgce_per_m3():
    with pytest.raises(UnitMismatch, match="kWh × kgce/m3"):
        multiplier("kWh", "kgce/m3", "tce")
    with pytest.raises(ValueError, match="needs tCO2/MWh"):
        Factor.model_validate({**override().model_dump(), "id": "g", "kind": "grid_emission_factor",
                               "subject": "electricity", "unit": "kgce/kWh"})


def test_file_errors_name_file_factor_and_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {document: d, edition: e}\nregion: CN\nvalid_from: 2020-01-01\nfactors:\n"
                   "  - {id: ok.one, kind: ncv, subject: diesel, value: 42, unit: GJ/t, confidence: c}\n"
                   "  - {id: bad.two, kind: ncv, subject: diesel, value: 42, unit: blorps/t, confidence: c}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: factors\[1\] \(id 'bad\.two'\): unit: .*blorps"):
        load_factor_file(bad)


def test_override_needs_author_and_reason():
    with pytest.raises(ValueError, match="author and reason"):
        override(author=None)


def test_resolution_prefers_overrides_regions_and_later_validity():
    lib = FactorLibrary.shipped()
    assert lib.resolve("grid_emission_factor", "electricity", D, region="east_china", basis="average").id == \
        "mee.grid.2023.east_china.average"
    assert lib.resolve("grid_emission_factor", "electricity", dt.date(2022, 6, 1), region="east_china",
                       basis="average").id == "mee.grid.2022.east_china.average"
    # a province falls back to its regional grid, then to the national factor
    lib.regions["jiangsu"] = "east_china"
    assert lib.resolve("grid_emission_factor", "electricity", D, region="jiangsu", basis="average").region == "east_china"
    assert lib.resolve("grid_emission_factor", "electricity", D, region="jiangsu",
                       basis="excluding_market_non_fossil").id == "mee.grid.2023.cn.residual"
    with pytest.raises(FactorNotFound, match="2019-06-01"):
        lib.resolve("grid_emission_factor", "electricity", dt.date(2019, 6, 1), basis="average")


def test_measured_ncv_takes_precedence_for_coal_equivalent():
    """GB/T 2589-2020 ch. 8: kgce = NCV / 29 307 kJ when a measured NCV exists."""
    lib = FactorLibrary.shipped().with_overrides([override()])
    c = coal_equivalent(Carrier.natural_gas, D, lib, AccountingOptions())
    assert c.value == pytest.approx(36_000 / 29_307 / 1000)  # tce per m3
    assert [f.id for f in c.factors] == ["park.x", "gbt2589.kgce_heat"]
    # before the override's validity the Annex A coefficient applies
    old = coal_equivalent(Carrier.natural_gas, dt.date(2025, 6, 1), lib, AccountingOptions())
    assert old.value == pytest.approx(1.2143e-3)


def test_dengjia_needs_the_years_value():
    lib = FactorLibrary.shipped()
    opts = AccountingOptions(electricity_basis="dengjia")
    with pytest.raises(FactorNotFound, match="electricity_equivalent"):
        coal_equivalent(Carrier.electricity, D, lib, opts)
    lib = lib.with_overrides([override(id="park.dengjia.2026", kind="electricity_equivalent", subject="electricity",
                                       value=0.3003, unit="kgce/kWh", reason="上年全国供电标准煤耗 (set each year)")])
    assert coal_equivalent(Carrier.electricity, D, lib, opts).value == pytest.approx(0.3003e-3)


def test_every_regional_grid_has_its_2022_and_2023_factor():
    lib = FactorLibrary.shipped()
    regions = ["north_china", "northeast_china", "east_china", "central_china", "northwest_china", "south_china",
               "southwest_china"]
    expected_2022 = [0.6776, 0.5564, 0.5617, 0.5395, 0.5857, 0.3869, 0.2268]
    for region, v in zip(regions, expected_2022, strict=True):
        assert lib.resolve("grid_emission_factor", "electricity", dt.date(2022, 6, 1), region=region,
                           basis="average").value == v
        assert lib.resolve("grid_emission_factor", "electricity", D, region=region, basis="average").data_year == 2023
    # a province's 2022 factor stays in force until a newer one is added
    assert lib.resolve("grid_emission_factor", "electricity", D, region="yunnan", basis="average").value == 0.1073
