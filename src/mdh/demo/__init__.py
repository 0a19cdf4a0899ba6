"""The demo world: three realistic source systems, a duplicate generator and live traffic."""
