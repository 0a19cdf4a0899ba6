"""The demo world: three realistic source systems, a duplicate generator with ground truth, and
live traffic.

Public API::

    databases = create_sources(server, reset=False)            # schemas.py
    result = seed_sources(server, GeneratorConfig(customers=10_000, seed=42))   # generator.py
    counts = run_traffic(databases, TrafficConfig(rate=5), stop_event)          # traffic.py

``generate(config)`` builds a world in memory (tests, small N); ``load_world`` streams one
into empty sources with COPY. ``Corruption`` sets how records deviate; ``WorldShape`` what
customers exist (organisation share, countries, non-Latin share, moves, e-mail changes).

The databases (see ``schemas`` for the conventions): ``crm``, ``billing`` and ``erp``, each a
source for Debezium (tables in ``public``), and ``demo_truth`` with schema ``truth``:

- ``truth.entity(entity_id, kind, role, customer_id, country, seed, attributes, created_at,
  updated_at)``: every real party. ``role`` is ``customer`` (an organisation or a person
  customer, ``E0000042``) or ``contact`` (a person working for an organisation customer,
  ``E0000042-C1``; ``customer_id`` names the organisation). ``attributes`` are the party's true
  current values under the canonical model's attribute names (Latin script; native spellings
  in ``extra.native_name``), what a perfect golden record would say; traffic keeps them current.
- ``truth.source_entity(system, table_name, pk, entity_id, duplicate, origin, created_at,
  deleted_at)``: which real party each source row describes. ``table_name`` is the bare table
  name (``account``, ``kna1``; schema ``public``), ``pk`` the row's primary key as text,
  ``duplicate`` whether the party already had a row in that table when this one was written,
  ``origin`` ``seed`` or ``traffic``, ``deleted_at`` when traffic deleted the row.
- ``truth.dataset``: the generator configuration of the world (one row).

Two source records are a true match when they have the same ``entity_id``; counting per
customer (a contact row with its organisation), join ``truth.entity`` and use ``customer_id``.

Intended source mapping, column -> canonical attribute (``hub.model.CanonicalParty``):

``crm.account`` (Salesforce Account, business and person accounts; key ``id``)
    kind            ``person`` if ``ispersonaccount`` else ``organization``
    legal_name      ``name`` (business accounts)
    given_name      ``firstname``; family_name ``lastname`` (person accounts)
    emails          [``personemail``]
    phones          [``phone``, ``personmobilephone``]: "(415) 555-0134", "+49 30 1234567",
                    national forms; the country is the account's
    addresses       [{lines: ``billingstreet`` split at line breaks (a suite or flat may be a
                    second line or come first, "Suite 400, 12 Main St"), city: ``billingcity``,
                    region: ``billingstate`` (code or name; JP prefecture name),
                    postal_code: ``billingpostalcode``, country: ``billingcountry``}];
                    billingcountry is free text ("USA", "Deutschland", "UK", "日本"): map it
                    through a country-name lookup
    website         ``website``
    date_of_birth   ``personbirthdate``
    extra           ``industry``, ``type``, ``numberofemployees``
``crm.contact`` (contact persons of business accounts; key ``id``)
    kind ``person``; given_name ``firstname``; family_name ``lastname``; emails [``email``];
    phones [``phone``, ``mobilephone``]; extra ``accountid``, ``title``. No address or country
    of its own (the account's country applies to national phone numbers).
``billing.account`` (Zuora Account; key ``id``)
    kind            ``person`` if ``customertype__c`` = 'Individual' else ``organization``
                    (the custom field is sometimes empty)
    legal_name      ``name`` (Business; an Individual's name is "Given Family" or
                    "Family, Given", the split names are on the bill-to contact)
    tax_id          ``vatid``: VAT id, ABN, GST/HST number or Japanese invoice registration
                    number, with or without country prefix, spaced or lower case
    currency ``currency``; payment_terms ``paymentterm``; credit_limit ``creditlimit``;
    lifecycle_status ``status``
    extra           ``accountnumber``, ``crmid`` (the Salesforce account id where the CRM
                    connector set it), ``billtoid``, ``balance``, ``billcycleday``
    Address, e-mail and phone live on the bill-to contact (Zuora's model), so an account
    row alone has little to match on: map ``billing.contact`` too, or look the bill-to
    contact up when mapping the account.
``billing.contact`` (the bill-to contact; key ``id``)
    kind ``person``; given_name ``firstname``; family_name ``lastname``;
    emails [``workemail``]; phones [``workphone``] (E.164 or international mostly);
    addresses [{lines: [``address1``, ``address2``], city: ``city``, region: ``state`` (full
    name, "California"; IT province code), postal_code: ``postalcode``, country: ``country``
    (English name, "United States")}]; extra ``accountid``. For an Individual account it is
    the customer; for a Business it is a person in the company's accounts payable at the
    company's address (workemail may be a role mailbox, workphone the switchboard).
``erp.kna1`` (SAP customer master; key ``kunnr``)
    kind            ``person`` if ``stkzn`` = 'X' else ``organization``
    legal_name      ``name1`` || ' ' || ``name2`` (upper case; the legal form often alone in
                    name2; Japanese customers mostly in Japanese script)
    family_name     ``name1``; given_name ``name2`` (persons; some clerks put "GIVEN FAMILY"
                    or "FAMILY, GIVEN" into name1 and leave name2 empty)
    phones          [``telf1``]: national form, country from ``land1``; "0049 ..." sometimes;
                    full-width digits in some Japanese records
    addresses       [{lines: [``stras``], city: ``ort01``, region: ``regio``, postal_code:
                    ``pstlz`` (a lost leading zero now and then), country: ``land1``}]
    tax_id          ``stceg`` (EU and UK VAT) or else ``stcd1`` (EIN, BN, ABN, JP number)
    extra           ``anred``, ``spras``, ``ktokd``, ``erdat`` (SAP date text YYYYMMDD)
``erp.knvk`` (SAP contact persons; key ``parnr``)
    kind ``person``; given_name ``namev``; family_name ``name1``; phones [``telf1``];
    emails [``smtp_addr``]; extra ``kunnr``, ``pafkt``.

``mdh_golden_id`` (every table) is the write-back column, not mapped. All values are
synthetic; phone numbers and e-mail addresses may coincide with real ones, so nothing here may
ever send a message to them.
"""

from mdh.demo.corruption import NO_CORRUPTION, Corruption
from mdh.demo.entities import WorldShape
from mdh.demo.generator import (
    DEFAULT_DUPLICATE_RATE,
    DEFAULT_OVERLAP,
    DemoWorld,
    GeneratorConfig,
    SeedResult,
    generate,
    load_world,
    seed_sources,
)
from mdh.demo.schemas import (
    SOURCE_TABLES,
    SYSTEMS,
    TRUTH_DATABASE,
    DemoDatabases,
    DemoError,
    create_sources,
)
from mdh.demo.traffic import TrafficConfig, TrafficCounts, TrafficMix, run_traffic

__all__ = [
    "DEFAULT_DUPLICATE_RATE",
    "DEFAULT_OVERLAP",
    "NO_CORRUPTION",
    "SOURCE_TABLES",
    "SYSTEMS",
    "TRUTH_DATABASE",
    "Corruption",
    "DemoDatabases",
    "DemoError",
    "DemoWorld",
    "GeneratorConfig",
    "SeedResult",
    "TrafficConfig",
    "TrafficCounts",
    "TrafficMix",
    "WorldShape",
    "create_sources",
    "generate",
    "load_world",
    "run_traffic",
    "seed_sources",
]
