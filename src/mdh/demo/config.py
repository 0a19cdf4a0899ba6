"""The shipped demo config (``demo.yaml``, its match spec and model next to it) and loading it
with the run's source URLs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mdh.config import MdhConfig, load_config
from mdh.demo.schemas import DemoDatabases

DEMO_CONFIG = "demo.yaml"


def demo_config_path() -> Path:
    """The shipped demo config (``mdh/demo/demo.yaml``; its match spec lies next to it)."""
    return Path(str(resources.files("mdh.demo").joinpath(DEMO_CONFIG)))


def load_demo_config(databases: DemoDatabases) -> MdhConfig:
    """The demo config with the source URLs of ``databases``.

    Raises:
        ConfigFileError: the shipped file is broken (a packaging bug).
    """
    environ = {
        "MDH_DEMO_CRM_URL": databases.crm,
        "MDH_DEMO_BILLING_URL": databases.billing,
        "MDH_DEMO_ERP_URL": databases.erp,
    }
    return load_config(demo_config_path(), environ)


__all__ = ["DEMO_CONFIG", "demo_config_path", "load_demo_config"]
