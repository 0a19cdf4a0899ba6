"""mdh: the composition root. The `mdh` command, process wiring and the embedded runtime."""
