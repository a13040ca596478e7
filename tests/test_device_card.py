"""Device cards: shipped cards load; bad cards give errors that name the field."""

from __future__ import annotations

import copy
import tomllib

import pytest
import tomli_w

from spinapse.behavioral.card import SCHEMA, cards_dir, list_cards, load_card, parse_card
from spinapse.behavioral.units import parse_unit, to_si


@pytest.fixture()
def stt_data():
    return tomllib.loads((cards_dir() / "mtj_mi_stt.toml").read_text())


def test_shipped_cards_load_with_unit_and_source_everywhere():
    names = [p.stem for p in list_cards()]
    assert {"mtj_mi_stt", "mtj_mi_sot", "dw_notched"} <= set(names)
    for name in names:
        card = load_card(name)
        for section, values in card.values.items():
            assert set(values) == set(SCHEMA[section])
            for key in values:
                assert card.units[section][key] and card.sources[section][key].strip()


def test_values_converted_to_si():
    card = load_card("mtj_mi_stt")
    assert card.values["mtj_read"]["RA"] == pytest.approx(9.8e-12, rel=1e-12)
    assert card.values["mtj_read"]["diameter"] == pytest.approx(50e-9, rel=1e-12)
    assert card.values["mtj_switching"]["tau0"] == pytest.approx(1e-9, rel=1e-12)
    assert card.values["magneto_ionic"]["dKi"] == pytest.approx(4e-5, rel=1e-12)
    assert card.values["magneto_ionic"]["C_gate"] == pytest.approx(43e-18, rel=1e-12)


def test_units():
    assert parse_unit("Ohm*um^2") == (pytest.approx(1e-12), (("Ohm", 1), ("m", 2)))
    assert to_si(3.0, "kOhm", "Ohm") == 3000.0
    assert to_si(5.0, "mJ/m^2", "J/m^2") == pytest.approx(5e-3)
    with pytest.raises(ValueError, match="not a unit of"):
        to_si(1.0, "ns", "m")
    with pytest.raises(ValueError, match="unknown unit symbol"):
        to_si(1.0, "furlong", "m")


def expect_error(data, match):
    with pytest.raises(ValueError, match=match):
        parse_card(data)


def test_missing_unit_names_the_field(stt_data):
    del stt_data["mtj_read"]["RA"]["unit"]
    expect_error(stt_data, r"\[mtj_read\]\.RA: missing 'unit'")


def test_negative_delta_names_the_field(stt_data):
    stt_data["mtj_switching"]["Delta0"]["value"] = -5
    expect_error(stt_data, r"\[mtj_switching\]\.Delta0: value -5 .* outside \(0, 1000\]")


def test_unknown_key_names_the_field(stt_data):
    stt_data["mtj_read"]["RAA"] = copy.deepcopy(stt_data["mtj_read"]["RA"])
    expect_error(stt_data, r"\[mtj_read\]\.RAA: unknown field")


def test_unknown_key_inside_a_field(stt_data):
    stt_data["mtj_read"]["RA"]["tolerance"] = 0.1
    expect_error(stt_data, r"\[mtj_read\]\.RA: unknown key\(s\) \['tolerance'\]")


def test_c_outside_unit_interval_names_the_field(stt_data):
    stt_data["magneto_ionic"]["c_init"]["value"] = 1.5
    expect_error(stt_data, r"\[magneto_ionic\]\.c_init: value 1.5 .* outside \[0, 1\]")
    stt_data["magneto_ionic"]["c_init"]["value"] = -0.1
    expect_error(stt_data, r"\[magneto_ionic\]\.c_init: value -0.1 .* outside \[0, 1\]")


def test_wrong_dimension_missing_source_missing_field(stt_data):
    bad = copy.deepcopy(stt_data)
    bad["mtj_read"]["diameter"]["unit"] = "ns"
    expect_error(bad, r"\[mtj_read\]\.diameter: unit 'ns' is not a unit of 'm'")
    bad = copy.deepcopy(stt_data)
    bad["mtj_switching"]["tau0"]["source"] = " "
    expect_error(bad, r"\[mtj_switching\]\.tau0: source must be a non-empty string")
    bad = copy.deepcopy(stt_data)
    del bad["magneto_ionic"]["V_0"]
    expect_error(bad, r"\[magneto_ionic\]\.V_0: missing field")
    bad = copy.deepcopy(stt_data)
    bad["card"]["kind"] = "memristor"
    expect_error(bad, r"\[card\]\.kind: 'memristor'")
    bad = copy.deepcopy(stt_data)
    bad["sot"] = {}
    expect_error(bad, r"\[sot\]: unknown section")


def test_load_card_from_path_reports_file(tmp_path, stt_data):
    stt_data["mtj_switching"]["Delta0"]["value"] = -1
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(stt_data))
    with pytest.raises(ValueError, match=r"bad.toml: \[mtj_switching\]\.Delta0"):
        load_card(path)
    with pytest.raises(FileNotFoundError, match="no device card"):
        load_card("no_such_card")
