"""Built-in authentication methods, registered as plugins (see plugins.BUILTIN_PLUGINS)."""
