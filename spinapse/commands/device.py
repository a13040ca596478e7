"""``spinapse device list | show CARD | characterize CARD | va CARD``: the device cards, their
sweeps and their Verilog-A models."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinapse.behavioral.card import SCHEMA, list_cards, load_card


def _list(args: argparse.Namespace) -> int:
    for path in list_cards():
        card = load_card(path)
        kind = card.kind + (f" ({card.variant})" if card.variant else "")
        print(f"{card.name:<16} {kind:<26} {card.description}")
    return 0


def _show(args: argparse.Namespace) -> int:
    card = load_card(args.card)
    print(f"# {card.name}: {card.description}")
    print(f"# kind {card.kind}" + (f", variant {card.variant}" if card.variant else ""))
    print(f"# file {card.path}")
    for section, values in card.values.items():
        print(f"\n[{section}]")
        for key, si in values.items():
            unit = card.units[section][key]
            si_unit = SCHEMA[section][key].unit
            print(f"  {key:<18} {si:<13.6g} {si_unit:<9} (card: {unit})")
            print(f"  {'':<18} source: {card.sources[section][key]}")
    return 0


def _characterize(args: argparse.Namespace) -> int:
    from spinapse.behavioral.characterize import characterize

    card = load_card(args.card)
    out = Path(args.out) if args.out else Path("results") / "device" / card.name
    for path in characterize(card, out, devices=args.devices, seed=args.seed):
        print(path)
    return 0


def _va(args: argparse.Namespace) -> int:
    from spinapse.behavioral.va_card import card_va
    from spinapse.io import write_text

    card = load_card(args.card)
    module, text, kept = card_va(card)
    out = Path(args.out) if args.out else Path("results") / "device" / card.name / f"{module}.va"
    write_text(out, text)
    print(f"{out}: module {module}, parameter defaults from card {card.name}")
    if kept:
        print(f"  left at the model's defaults (set them per instance): {', '.join(kept)}")
    return 0


CHARACTERIZE_HELP = """\
Sweeps of a device card, written as CSV tables (every number) and PNG plots into --out.

mtj_synapse cards:
  psw_vs_amplitude.csv/.png  switching probability against pulse current, 0.5 to 4 Ic0, for
                             1, 10 and 100 ns pulses: nominal device (line) and the flip
                             frequency of --devices devices with the card's spread (points)
  rv_curves.csv/.png         R_P and R_AP(V) from -1 V to 1 V
  psw_vs_c.csv/.png          P_sw of a 10 ns pulse at Ic0 (c = 0) against the hidden state c
domain_wall_synapse cards:
  dw_conductance_vs_pulses.csv/.png  conductance after 8 positive then 8 negative 8 ns
                             pulses at three current densities against the depinning thresholds
  rv_curves.csv/.png         read resistance with the wall at either end of the window
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "device",
        help="list, show and characterise device cards; write their Verilog-A",
        description="Device cards (TOML, SI units, sources) of the behavioural synapse models.",
    )
    sub = parser.add_subparsers(dest="device_cmd", metavar="COMMAND")
    sub.required = True
    p_list = sub.add_parser("list", help="the shipped cards")
    p_list.set_defaults(func=_list)
    p_show = sub.add_parser("show", help="every parameter of a card in SI units with its source")
    p_show.add_argument("card", help="shipped card name (see `spinapse device list`) or TOML path")
    p_show.set_defaults(func=_show)
    p_char = sub.add_parser(
        "characterize",
        help="write CSV and PNG sweeps of a card",
        description=CHARACTERIZE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_char.add_argument("card", help="shipped card name or TOML path")
    p_char.add_argument(
        "--out", help="output folder (default: results/device/<card name>/, created if needed)"
    )
    p_char.add_argument(
        "--devices",
        type=int,
        default=2000,
        help="simulated devices per Monte-Carlo point (default: 2000)",
    )
    p_char.add_argument(
        "--seed", type=int, default=0, help="seed of every torch.Generator draw (default: 0)"
    )
    p_char.set_defaults(func=_characterize)
    p_va = sub.add_parser(
        "va",
        help="write the card's Verilog-A model with the card's values as parameter defaults",
        description="Writes a copy of the Verilog-A model of the card's kind "
        "(behavioral/va/metaplastic_synapse.va or domain_wall.va) whose parameter defaults are "
        "the card's SI values and whose module is named <model>_<card name>.",
    )
    p_va.add_argument("card", help="shipped card name or TOML path")
    p_va.add_argument(
        "-o",
        "--out",
        help="the .va file to write (default: results/device/<card name>/<module>.va)",
    )
    p_va.set_defaults(func=_va)
