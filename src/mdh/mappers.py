"""The change mapper a capture worker uses: the declarative mapping of the config file, plus
the joins its ``enrichment`` section names.

``mdh demo`` builds its own mapper (it also tracks the demo's progress); ``mdh cdc run``, with
either transport, builds this one, so a scale-out worker reading Kafka Connect's topics maps a
change exactly as the demo does once ``enrichment: {joins: demo, references: ...}`` is set.
"""

from __future__ import annotations

from cdc.mapping import ChangeMapper
from mdh.config import ConfigFileError, MdhConfig
from mdh.demo.mapping import DemoChangeMapper, ReferenceData


def build_mapper(config: MdhConfig) -> ChangeMapper:
    """The mapper for ``config``'s sources and enrichment.

    Raises:
        ConfigFileError: no source is configured.
    """
    if config.mappings is None:
        raise ConfigFileError(config.file, "sources", "at least one configured source")
    if config.enrichment is None:
        return ChangeMapper(config.mappings)
    references = ReferenceData(
        config.reference_urls(), max_age_seconds=config.enrichment.max_age_seconds
    )
    return DemoChangeMapper(config.mappings, references)
