"""The `codecshift` command line: one module per command group."""
