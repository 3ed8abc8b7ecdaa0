"""The ``promise`` command: ``main`` assembles the typer app from one module per command group."""
