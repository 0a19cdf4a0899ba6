"""Person names: honorifics, suffixes, scripts, nicknames and one-field names."""

from __future__ import annotations

import pytest

from matching.standardize import (
    canonical_given_name,
    split_full_name,
    split_name_parts,
    standardize_person_name,
)
from matching.standardize.names import NICKNAMES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Robert Smith", "robert smith"),
        ("  ROBERT   SMITH ", "robert smith"),
        ("Robert Smith Jr.", "robert smith"),
        ("Robert Smith, Jr.", "robert smith"),
        ("Mr. Robert Smith", "robert smith"),
        ("Mr & Mrs John Smith", "john smith"),
        ("Dr. med. Hans-Peter Müller", "hans peter muller"),
        ("Prof. Dr. Ingrid Schäfer", "ingrid schafer"),
        ("Herr Jürgen Groß", "jurgen gross"),
        ("Frau Dr. Anna Weiß", "anna weiss"),
        ("Mme Hélène Lefèvre", "helene lefevre"),
        ("M. Jean-Luc Picard", "jean luc picard"),
        ("Sra. María José García-López", "maria jose garcia lopez"),
        ("Sr. José Núñez", "jose nunez"),
        ("Dott.ssa Chiara Bianchi", "chiara bianchi"),
        ("Seán O'Brien", "sean obrien"),
        ("D’Angelo Russo", "dangelo russo"),
        ("John Smith III", "john smith"),
        ("Jane Doe, PhD", "jane doe"),
        ("Jane Doe MD", "jane doe"),
        ("Sir Elton John", "elton john"),
        ("J.R.R. Tolkien", "j r r tolkien"),
        ("Zoë Saldaña", "zoe saldana"),
        ("Łukasz Żółć", "lukasz zolc"),
        ("Ørjan Ødegård", "orjan odegard"),
        ("Иван Петров", "ivan petrov"),
        ("Ольга Смирнова", "ol'ga smirnova".replace("'", "")),
        ("Γιώργος Παπαδόπουλος", "giorgos papadopoulos"),
        ("王小明", "wang xiaoming"),
        ("김민준", "gim minjun"),
        ("John Major", "john major"),
        ("Major", "major"),
        ("Junior", "junior"),
        ("", ""),
        ("   ", ""),
        ("---", ""),
    ],
)
def test_standardize_person_name(raw: str, expected: str) -> None:
    assert standardize_person_name(raw) == expected


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Bob", "Robert"),
        ("bobby", "ROBERT"),
        ("Rob", "Robert"),
        ("Bill", "William"),
        ("Billy", "William"),
        ("Will", "William"),
        ("Liz", "Elizabeth"),
        ("Betty", "Elizabeth"),
        ("Elisabeth", "Elizabeth"),
        ("Peggy", "Margaret"),
        ("Maggie", "Margaret"),
        ("Jim", "James"),
        ("Jimmy", "James"),
        ("Dick", "Richard"),
        ("Rick", "Richard"),
        ("Tony", "Anthony"),
        ("Kate", "Katherine"),
        ("Catherine", "Katherine"),
        ("Kathy", "Catherine"),
        ("Steve", "Steven"),
        ("Steve", "Stephen"),
        ("Jeff", "Geoffrey"),
        ("Jack", "John"),
        ("Mike", "Michael"),
        ("Chuck", "Charles"),
        ("Sue", "Susan"),
        ("Hans", "Johannes"),
        ("Sepp", "Josef"),
        ("Pepe", "José"),
        ("Paco", "Francisco"),
        ("Sasha", "Aleksandr"),
        ("Natasha", "Natalia"),
        ("Kasia", "Katarzyna"),
        ("Dr. Bob", "robert"),
    ],
)
def test_nicknames_share_a_canonical_name(left: str, right: str) -> None:
    assert canonical_given_name(left) == canonical_given_name(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Carlos", "Charles"),  # cognates are different names
        ("Pierre", "Peter"),
        ("Maria", "Mary"),
        ("Robert", "William"),
        ("Jan", "Janet"),
        ("Anna", "Hannah"),
    ],
)
def test_different_names_stay_different(left: str, right: str) -> None:
    assert canonical_given_name(left) != canonical_given_name(right)


def test_canonical_given_name_is_the_first_reading_of_an_ambiguous_nickname() -> None:
    assert canonical_given_name("Alex") == "alexander"
    assert canonical_given_name("Pat") == "patrick"
    assert canonical_given_name("Mary Ann") == "mary anne"
    assert canonical_given_name("Peggy-Sue") == "margaret susan"


def test_every_canonical_name_is_a_fixed_point() -> None:
    assert NICKNAMES, "the nickname table is loaded from package data"
    assert len(NICKNAMES) >= 400
    for name, canonical in NICKNAMES.items():
        assert canonical not in NICKNAMES, (name, canonical)
        assert canonical_given_name(canonical) == canonical


@pytest.mark.parametrize(
    ("raw", "given", "middle", "family"),
    [
        ("John Smith", "john", "", "smith"),
        ("Smith, John", "john", "", "smith"),
        ("Smith, John A.", "john", "a", "smith"),
        ("Mr. John A. Smith Jr.", "john", "a", "smith"),
        ("John Smith, Jr.", "john", "", "smith"),
        ("Smith, John, PhD", "john", "", "smith"),
        ("Ludwig van Beethoven", "ludwig", "", "van beethoven"),
        ("Maria de la Cruz", "maria", "", "de la cruz"),
        ("Jean-Claude Van Damme", "jean", "claude", "van damme"),
        ("Dr. Hans Müller", "hans", "", "muller"),
        ("M. Jean Dupont", "jean", "", "dupont"),
        ("Mohammed bin Salman", "mohammed", "", "bin salman"),
        ("Major, John", "john", "", "major"),
        ("王小明", "xiaoming", "", "wang"),
        ("Иван Петров", "ivan", "", "petrov"),
        ("Cher", "", "", "cher"),
        ("", "", "", ""),
        ("Mr", "", "", "mr"),
    ],
)
def test_split_name_parts(raw: str, given: str, middle: str, family: str) -> None:
    assert split_name_parts(raw) == (given, middle, family)
    assert split_full_name(raw) == (given, family)


def test_full_name_and_separate_fields_agree() -> None:
    given, family = split_full_name("Robert Smith Jr.")
    assert canonical_given_name(given) == canonical_given_name("bob")
    assert family == standardize_person_name("smith")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Dr. Phil Smith", "phil smith"),
        ("Dr. phil. Hans Meier", "hans meier"),
        ("Phil Collins", "phil collins"),
        ("Nat King Cole", "nat king cole"),
        ("Sig.ra Maria Rossi", "maria rossi"),
    ],
)
def test_title_tails_are_only_removed_after_a_title(raw: str, expected: str) -> None:
    assert standardize_person_name(raw) == expected


def test_suffix_does_not_change_how_the_title_is_read() -> None:
    assert standardize_person_name("Dr. Phil Smith Jr.") == "phil smith"
