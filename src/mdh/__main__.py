"""`python -m mdh` is the `mdh` command."""

from mdh.cli import app

app()
