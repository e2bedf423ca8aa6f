"""Generate a synthetic network: `python bench/generate.py --premises N --out DIR [--region GB]`.

Without `--region` the customers' numbers are E.164 (`+1651...`) as the demo writes them.
With `--region GB` (or `US`) they are written the way a CRM exports them: national
format in a few spellings (`07911 123456`, `07911123456`, `+44 7911 123456`), street
addresses with the town, and the country's postcodes, so the import does what it does on
an operator's real file.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from forewarn.network.csvfile import CUSTOMER_COLUMNS
from forewarn.network.synthetic import STREETS, generate

TOWNS = (
    "Ashford", "Barton", "Carlton", "Dunmore", "Eastleigh", "Fairford", "Glenfield",
    "Hampton", "Ilford", "Kingsbury",
)  # fmt: skip
GB_AREAS = ("CB", "OX", "LE", "NR", "YO", "EX", "BA", "GL", "SN", "TQ")
GB_MOBILE = ("071", "073", "074", "075", "078")  # prefixes where every number is valid
LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a UK postcode's last two may use


def gb_phone(rng: random.Random) -> str:
    """A UK mobile number as CRMs export it: mostly national format, some international."""
    national = f"{rng.choice(GB_MOBILE)}{rng.randint(0, 99):02d}{rng.randint(0, 999_999):06d}"
    spelling = rng.random()
    if spelling < 0.7:
        return f"{national[:5]} {national[5:]}"
    if spelling < 0.9:
        return national
    return f"+44 {national[1:5]} {national[5:]}"


def us_phone(rng: random.Random) -> str:
    """A US number in national format: `(651) 555-0123` or `651-555-0123`."""
    area, exchange, line = 651, rng.randint(200, 999), rng.randint(0, 9999)
    if rng.random() < 0.5:
        return f"({area}) {exchange}-{line:04d}"
    return f"{area}-{exchange}-{line:04d}"


def gb_postcode(n: int) -> str:
    """A UK-shaped postcode: district per town, unit per street of 16 houses."""
    town, street = divmod(n // 16, 6250)
    unit = street % (10 * len(LETTERS) ** 2)
    sector, rest = divmod(unit, len(LETTERS) ** 2)
    first, second = divmod(rest, len(LETTERS))
    area = GB_AREAS[town % len(GB_AREAS)]
    return f"{area}{town // len(GB_AREAS) + 1} {sector}{LETTERS[first]}{LETTERS[second]}"


def us_postcode(n: int) -> str:
    """A five-digit ZIP code per 5,000 premises."""
    return f"55{100 + (n // 5000) % 900:03d}"


STYLES: dict[str, tuple[Callable[[random.Random], str], Callable[[int], str], str]] = {
    "GB": (gb_phone, gb_postcode, "Europe/London"),
    "US": (us_phone, us_postcode, "America/Chicago"),
}


def realistic_rows(path: Path, region: str, seed: int = 11) -> Iterator[list[str]]:
    """The generated customers, rewritten with the region's numbers, addresses, postcodes."""
    phone_of, postcode_of, zone = STYLES[region]
    rng = random.Random(seed)
    columns = {name: i for i, name in enumerate(CUSTOMER_COLUMNS)}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            n = int(row[columns["customer_id"]][1:])
            cabinet, house = divmod(n, 16)
            street = STREETS[(cabinet // 3) % len(STREETS)]
            number = (cabinet % 3) * 16 + house + 1
            town = TOWNS[(n // 100_000) % len(TOWNS)]
            flat = f"Flat {house % 4 + 1}, " if house % 7 == 0 else ""
            row[columns["address"]] = f"{flat}{number} {street}, {town}"
            row[columns["postcode"]] = postcode_of(n)
            row[columns["phone"]] = phone_of(rng)
            row[columns["timezone"]] = zone
            row[columns["locale"]] = "en-GB" if region == "GB" else "en-US"
            yield row


def rewrite_customers(path: Path, region: str) -> None:
    """Replace the customers file with the region's realistic spelling of it."""
    scratch = path.with_suffix(".tmp")
    with scratch.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CUSTOMER_COLUMNS)
        writer.writerows(realistic_rows(path, region))
    os.replace(scratch, path)


def main() -> None:
    """Write topology.csv and customers.csv and print how long it took."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--premises", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/1m"))
    parser.add_argument(
        "--region", choices=sorted(STYLES), help="write national-format numbers and addresses"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    town = generate(args.out, args.premises)
    if args.region:
        rewrite_customers(town.customers, args.region)
    print(
        f"generated {town.premises:,} premises, {town.elements:,} elements "
        f"in {time.perf_counter() - started:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
