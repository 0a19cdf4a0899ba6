"""Sub-commands of `mdh`, one module each; `mdh.cli` registers them."""
