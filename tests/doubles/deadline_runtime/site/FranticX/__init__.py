"""``FranticX``: the plugin runtime double's stand-in (see tests/doubles/deadline_runtime)."""
