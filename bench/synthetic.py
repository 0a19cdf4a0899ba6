"""Seeded synthetic customers (persons and organisations) for latency and scale benchmarks.

Realism where it moves the numbers: name and street frequencies follow the pseudopeople sample
population bundled in its wheel (real US name frequencies, read offline), with a synthetic
long tail so that 1M records have a realistic number of distinct surnames; e-mail, phone and
postal formats vary the way CRM, billing and ERP extracts do; duplicates carry typos,
nicknames, reformatted phones, abbreviated streets and missing values.

Records are dicts of canonical fields (the names `mdh match --map` accepts) plus
``record_id`` and ``entity`` (the truth label).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

Record = dict[str, str | None]

_AREA_CODES = (  # noqa: SIM905 - a word list reads better as one string
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 "
    "234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 "
    "308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 352 "
    "360 361 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 432 "
    "434 435 440 443 469 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 515 516 "
    "517 518 520 530 540 541 559 561 562 563 570 571 573 574 580 585 586 601 602 603 605 606 "
    "607 608 609 610 612 614 615 616 617 618 619 620 623 626 630 631 636 641 646 650 651 660 "
    "661 662 678 701 702 703 704 706 707 708 712 713 714 715 716 717 718 719 720 724 727 731 "
    "732 734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801 802 803 804 805 806 "
    "808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 850 856 857 858 859 860 "
    "862 863 864 865 870 901 903 904 906 907 908 909 910 912 913 914 915 916 917 918 919 920 "
    "925 928 931 936 937 940 941 949 951 952 954 956 970 971 972 973 978 979 985 989"
).split()
_STATES = (  # noqa: SIM905 - a word list reads better as one string
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com")
_MAIL_WEIGHTS = (0.45, 0.15, 0.12, 0.12, 0.1, 0.06)
_LEGAL_FORMS = ("Inc", "Inc.", "LLC", "L.L.C.", "Corp", "Corporation", "Co", "Ltd", "Company")
_ORG_WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "Acme Summit Pioneer Harbor Granite Cedar Evergreen Northwind Bluewater Redwood Silverline "
    "Keystone Liberty Frontier Heritage Riverside Lakeside Pinnacle Beacon Crescent Meridian "
    "Atlas Orion Vertex Apex Horizon Sterling Cascade Prairie Canyon Coastal Metro Union "
    "Capital Premier Allied United National Global Pacific Atlantic Midwest Southern Northern"
).split()
_ORG_TRADES = (  # noqa: SIM905 - a word list reads better as one string
    "Logistics Dental Builders Foods Software Plumbing Electric Consulting Analytics Motors "
    "Roofing Bakery Pharmacy Outfitters Printing Partners Holdings Industries Systems Labs "
    "Marketing Realty Insurance Brewing Landscaping Hardware Textiles Media Design Freight"
).split()
_STREET_SUFFIX_VARIANTS = {
    "street": ("Street", "St", "St."),
    "st": ("Street", "St", "St."),
    "avenue": ("Avenue", "Ave", "Ave."),
    "ave": ("Avenue", "Ave", "Ave."),
    "road": ("Road", "Rd", "Rd."),
    "rd": ("Road", "Rd", "Rd."),
    "drive": ("Drive", "Dr", "Dr."),
    "dr": ("Drive", "Dr", "Dr."),
    "lane": ("Lane", "Ln"),
    "ln": ("Lane", "Ln"),
    "boulevard": ("Boulevard", "Blvd"),
    "blvd": ("Boulevard", "Blvd"),
    "court": ("Court", "Ct"),
    "ct": ("Court", "Ct"),
    "place": ("Place", "Pl"),
    "pl": ("Place", "Pl"),
}
_NICKNAMES = {
    "robert": "Bob",
    "william": "Bill",
    "elizabeth": "Liz",
    "richard": "Dick",
    "james": "Jim",
    "michael": "Mike",
    "jennifer": "Jen",
    "katherine": "Kate",
    "christopher": "Chris",
    "margaret": "Peggy",
    "joseph": "Joe",
    "thomas": "Tom",
    "daniel": "Dan",
    "patricia": "Pat",
    "anthony": "Tony",
    "rebecca": "Becky",
    "steven": "Steve",
    "jessica": "Jess",
    "matthew": "Matt",
    "nicholas": "Nick",
}
_SYLLABLES = (  # noqa: SIM905 - a word list reads better as one string
    "ab al an ar ber bran cal car del dor el en fal fen gar gil hal har in is jor kal ken lan "
    "lor mar mel mor nel nor ol or pal per quin ra ren ros sal sel tan ter ul ur val ver wal "
    "win yor zan"
).split()
_ENDINGS = ("", "s", "son", "er", "ley", "ton", "man", "ford", "wick", "berg", "ez", "ini", "ov")


@dataclass(frozen=True)
class _Pool:
    values: tuple[str, ...]
    weights: npt.NDArray[np.float64]

    def draw(self, rng: np.random.Generator, n: int) -> list[str]:
        picks = rng.choice(len(self.values), size=n, p=self.weights)
        values = self.values
        return [values[i] for i in picks.tolist()]


def _sample_population() -> Path:
    import pseudopeople

    root = Path(pseudopeople.__file__).parent / "data" / "sample_datasets"
    return root / "decennial_census" / "decennial_census.parquet"


@cache
def _pools() -> dict[str, _Pool]:
    import pandas as pd

    census = pd.read_parquet(
        _sample_population(), columns=["first_name", "last_name", "street_name"]
    )
    pools = {}
    for column, name in (
        ("first_name", "given"),
        ("last_name", "family"),
        ("street_name", "street"),
    ):
        counts = census[column].dropna().astype(str).str.strip()
        counts = counts[counts != ""].value_counts()
        weights = counts.to_numpy(dtype=np.float64)
        pools[name] = _Pool(tuple(counts.index), weights / weights.sum())
    return pools


def _tail_names(rng: np.random.Generator, n: int) -> list[str]:
    """Invented surnames for the long tail (most real surnames are rare)."""
    first = rng.choice(len(_SYLLABLES), size=n)
    second = rng.choice(len(_SYLLABLES), size=n)
    end = rng.choice(len(_ENDINGS), size=n)
    return [
        (_SYLLABLES[a] + _SYLLABLES[b] + _ENDINGS[c]).capitalize()
        for a, b, c in zip(first.tolist(), second.tolist(), end.tolist(), strict=True)
    ]


@dataclass(frozen=True)
class _Places:
    cities: tuple[str, ...]
    states: tuple[str, ...]
    zips: tuple[str, ...]
    weights: npt.NDArray[np.float64]


def _places(rng: np.random.Generator, n_places: int = 20_000) -> _Places:
    names = _tail_names(rng, n_places)
    suffixes = rng.choice(["", " City", "ville", " Springs", " Heights", "ton"], size=n_places)
    cities = tuple(f"{n}{s}" for n, s in zip(names, suffixes.tolist(), strict=True))
    states = tuple(rng.choice(_STATES, size=n_places).tolist())
    zips = tuple(f"{z:05d}" for z in rng.integers(1001, 99950, size=n_places).tolist())
    weights = 1.0 / np.arange(1, n_places + 1) ** 0.9  # a few big cities, many small towns
    return _Places(cities, states, zips, weights / weights.sum())


def _phone(area: str, exchange: int, line: int, style: int) -> str:
    if style == 0:
        return f"({area}) {exchange}-{line:04d}"
    if style == 1:
        return f"{area}-{exchange}-{line:04d}"
    if style == 2:
        return f"+1 {area} {exchange} {line:04d}"
    return f"{area}{exchange}{line:04d}"


def generate_customers(n: int, *, seed: int = 0, org_share: float = 0.15) -> list[Record]:
    """``n`` distinct customers (no duplicates), ids ``c0``..``c{n-1}``, entity = id."""
    rng = np.random.default_rng(seed)
    pools = _pools()
    places = _places(np.random.default_rng(seed + 1))
    is_org = rng.random(n) < org_share
    given = pools["given"].draw(rng, n)
    family = pools["family"].draw(rng, n)
    tail = rng.random(n) < 0.35
    tail_names = _tail_names(rng, int(tail.sum()))
    tail_iter = iter(tail_names)
    family = [next(tail_iter) if t else f for f, t in zip(family, tail.tolist(), strict=True)]
    streets = pools["street"].draw(rng, n)
    place = rng.choice(len(places.cities), size=n, p=places.weights).tolist()
    house = rng.integers(1, 9999, size=n).tolist()
    unit = rng.random(n) < 0.12
    unit_no = rng.integers(1, 400, size=n).tolist()
    born = rng.integers(
        np.datetime64("1940-01-01").astype(int), np.datetime64("2005-12-31").astype(int), size=n
    )
    dob = np.array(born, dtype="datetime64[D]").astype(str).tolist()
    has_dob = rng.random(n) < 0.85
    has_email = rng.random(n) < 0.8
    has_phone = rng.random(n) < 0.75
    mail_domain = rng.choice(len(_MAIL_DOMAINS), size=n, p=_MAIL_WEIGHTS).tolist()
    mail_number = rng.integers(1, 999, size=n).tolist()
    mail_style = rng.integers(0, 3, size=n).tolist()
    area = rng.choice(_AREA_CODES, size=n).tolist()
    exchange = rng.integers(201, 999, size=n).tolist()
    line = rng.integers(0, 9999, size=n).tolist()
    phone_style = rng.integers(0, 4, size=n).tolist()
    org_a = rng.choice(_ORG_WORDS, size=n).tolist()
    org_b = rng.choice(_ORG_TRADES, size=n).tolist()
    org_form = rng.choice(_LEGAL_FORMS, size=n).tolist()
    has_ein = rng.random(n) < 0.6
    ein = rng.integers(10_0000000, 99_9999999, size=n).tolist()
    has_site = rng.random(n) < 0.5

    records: list[Record] = []
    for i in range(n):
        city_index = place[i]
        record: Record = {
            "record_id": f"c{i}",
            "entity": f"c{i}",
            "address": f"{house[i]} {streets[i].title()}",
            "unit": f"Apt {unit_no[i]}" if unit[i] else None,
            "city": places.cities[city_index],
            "region": places.states[city_index],
            "postcode": places.zips[city_index],
            "country": "US",
            "phone": _phone(area[i], exchange[i], line[i], phone_style[i])
            if has_phone[i]
            else None,
        }
        if is_org[i]:
            # Several organisations share a name stem; the family-name slot makes most unique.
            name = f"{family[i]} {org_a[i]} {org_b[i]}"
            domain = f"{family[i]}{org_b[i]}{i % 97}.com".lower()
            record.update(
                legal_name=f"{name} {org_form[i]}",
                tax_id=f"{str(ein[i])[:2]}-{str(ein[i])[2:]}" if has_ein[i] else None,
                website=f"www.{domain}" if has_site[i] else None,
                email=f"info@{domain}" if has_email[i] else None,
            )
        else:
            g, f = given[i], family[i]
            local = (
                f"{g}.{f}",
                f"{g[0]}{f}{mail_number[i]}",
                f"{g}{f}{mail_number[i]}",
            )[mail_style[i]].lower()
            record.update(
                given_name=g,
                family_name=f,
                dob=dob[i] if has_dob[i] else None,
                email=f"{local}@{_MAIL_DOMAINS[mail_domain[i]]}" if has_email[i] else None,
            )
        records.append(record)
    return records


def _typo(rng: np.random.Generator, value: str) -> str:
    if len(value) < 4:
        return value
    k = int(rng.integers(1, len(value) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:  # transpose
        return value[: k - 1] + value[k] + value[k - 1] + value[k + 1 :]
    if kind == 1:  # delete
        return value[:k] + value[k + 1 :]
    return value[:k] + str(rng.choice(list(string.ascii_lowercase))) + value[k + 1 :]


def _restyle_street(rng: np.random.Generator, address: str) -> str:
    words = address.split()
    last = words[-1].lower().rstrip(".")
    if last in _STREET_SUFFIX_VARIANTS:
        words[-1] = str(rng.choice(_STREET_SUFFIX_VARIANTS[last]))
    return " ".join(words)


def _restyle_phone(rng: np.random.Generator, phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())[-10:]
    return _phone(digits[:3], int(digits[3:6]), int(digits[6:]), int(rng.integers(0, 4)))


def make_duplicate(record: Record, rng: np.random.Generator, record_id: str) -> Record:
    """A noisy copy of ``record`` as another system (or a careless clerk) would hold it."""
    twin = dict(record, record_id=record_id)
    roll = rng.random(12)
    if twin.get("given_name"):
        given = str(twin["given_name"])
        if roll[0] < 0.12 and given.lower() in _NICKNAMES:
            twin["given_name"] = _NICKNAMES[given.lower()]
        elif roll[0] < 0.25:
            twin["given_name"] = _typo(rng, given)
        elif roll[0] < 0.35:
            twin["given_name"] = given.upper()
    if twin.get("family_name") and roll[1] < 0.25:
        twin["family_name"] = _typo(rng, str(twin["family_name"]))
    if twin.get("legal_name") and roll[2] < 0.5:
        words = str(twin["legal_name"]).split()
        twin["legal_name"] = " ".join(words[:-1]) + " " + str(rng.choice(_LEGAL_FORMS))
    if twin.get("email"):
        if roll[3] < 0.3:
            twin["email"] = None
        elif roll[3] < 0.45:
            twin["email"] = str(twin["email"]).upper()
    if twin.get("phone"):
        twin["phone"] = None if roll[4] < 0.25 else _restyle_phone(rng, str(twin["phone"]))
    if twin.get("dob") and roll[5] < 0.2:
        twin["dob"] = None
    elif twin.get("dob") and "-" in str(twin["dob"]) and roll[5] < 0.3:
        y, m, d = str(twin["dob"]).split("-")
        twin["dob"] = f"{m}/{d}/{y}"
    if twin.get("address"):
        twin["address"] = _restyle_street(rng, str(twin["address"]))
        if roll[6] < 0.1:
            twin["address"] = _typo(rng, str(twin["address"]))
    if roll[7] < 0.1:
        twin["postcode"] = None
    if twin.get("tax_id") and roll[8] < 0.3:
        twin["tax_id"] = str(twin["tax_id"]).replace("-", "")
    if roll[9] < 0.3:
        twin["unit"] = None
    return twin


def with_duplicates(
    records: Sequence[Record], share: float, *, seed: int = 0, prefix: str = "d"
) -> list[Record]:
    """``records`` plus noisy duplicates of a random ``share`` of them (up to 3 per original)."""
    rng = np.random.default_rng(seed + 2)
    chosen = rng.choice(len(records), size=int(len(records) * share), replace=False).tolist()
    copies = rng.choice([1, 1, 1, 2, 3], size=len(chosen)).tolist()
    out = list(records)
    for index, count in zip(chosen, copies, strict=True):
        for c in range(count):
            out.append(make_duplicate(records[index], rng, f"{prefix}{index}-{c}"))
    order = rng.permutation(len(out)).tolist()
    return [out[i] for i in order]


def new_arrivals(
    store: Sequence[Record], n: int, *, seed: int = 0, duplicate_share: float = 0.5
) -> list[Record]:
    """Records arriving one at a time: half noisy copies of stored customers, half new ones."""
    rng = np.random.default_rng(seed + 3)
    n_dup = int(n * duplicate_share)
    picks = rng.choice(len(store), size=n_dup, replace=False).tolist()
    arrivals = [make_duplicate(store[i], rng, f"n{k}") for k, i in enumerate(picks)]
    fresh = generate_customers(n - n_dup, seed=seed + 1000)
    arrivals += [dict(r, record_id=f"n{n_dup + k}", entity=f"new{k}") for k, r in enumerate(fresh)]
    order = rng.permutation(len(arrivals)).tolist()
    return [arrivals[i] for i in order]


if __name__ == "__main__":
    import time

    started = time.perf_counter()
    sample = generate_customers(100_000, seed=1)
    print(f"100,000 customers in {time.perf_counter() - started:.1f} s")
    for record in with_duplicates(sample[:5], 1.0, seed=1):
        print({k: v for k, v in record.items() if v is not None})
