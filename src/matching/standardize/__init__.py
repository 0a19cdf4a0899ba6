"""Standardizers: raw attribute values to comparison keys, each idempotent and never raising.

Every function accepts any value (None, numbers, bytes, text in any script) and returns a
standardized string, or None / "" when there is nothing to compare. Applying a standardizer
to its own output changes nothing.
"""

from matching.standardize.addresses import (
    StreetParts,
    split_street,
    split_street_parts,
    standardize_city,
    standardize_house_number,
    standardize_postcode,
    standardize_street,
    standardize_unit,
)
from matching.standardize.countries import standardize_country, standardize_region
from matching.standardize.dates import standardize_date
from matching.standardize.domains import is_free_mail_domain, standardize_domain
from matching.standardize.emails import email_local_part, is_role_email, standardize_email
from matching.standardize.identifiers import standardize_national_id, standardize_tax_id
from matching.standardize.names import (
    NameParts,
    canonical_given_name,
    split_full_name,
    split_name_parts,
    standardize_person_name,
)
from matching.standardize.organizations import (
    OrgName,
    legal_form,
    split_org_name,
    standardize_legal_form,
    standardize_org_name,
)
from matching.standardize.phones import standardize_phone

__all__ = [
    "NameParts",
    "OrgName",
    "StreetParts",
    "canonical_given_name",
    "email_local_part",
    "is_free_mail_domain",
    "is_role_email",
    "legal_form",
    "split_full_name",
    "split_name_parts",
    "split_org_name",
    "split_street",
    "split_street_parts",
    "standardize_city",
    "standardize_country",
    "standardize_date",
    "standardize_domain",
    "standardize_email",
    "standardize_house_number",
    "standardize_legal_form",
    "standardize_national_id",
    "standardize_org_name",
    "standardize_person_name",
    "standardize_phone",
    "standardize_postcode",
    "standardize_region",
    "standardize_street",
    "standardize_tax_id",
    "standardize_unit",
]
