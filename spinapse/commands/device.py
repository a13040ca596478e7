"""``spinapse device list | show CARD | characterize CARD``: the device cards and their sweeps."""

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


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "device",
        help="list, show and characterise device cards",
        description="Device cards (TOML, SI units, sources) of the behavioural synapse models.",
    )
    sub = parser.add_subparsers(dest="device_cmd", metavar="COMMAND")
    sub.required = True
    p_list = sub.add_parser("list", help="the shipped cards")
    p_list.set_defaults(func=_list)
    p_show = sub.add_parser("show", help="every parameter of a card in SI units with its source")
    p_show.add_argument("card", help="shipped card name (see `spinapse device list`) or TOML path")
    p_show.set_defaults(func=_show)
    p_char = sub.add_parser("characterize", help="write CSV and PNG sweeps of a card")
    p_char.add_argument("card", help="shipped card name or TOML path")
    p_char.add_argument("--out", help="output folder (default results/device/<card name>)")
    p_char.add_argument("--devices", type=int, default=2000, help="devices per array point")
    p_char.add_argument("--seed", type=int, default=0, help="torch.Generator seed")
    p_char.set_defaults(func=_characterize)
