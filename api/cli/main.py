"""The ``promise`` command: what rule authors and operators type.

Like the HTTP service, this is an edge: it parses arguments, calls ``rules`` and ``engine``,
and prints. Each subcommand's help ends with an example. The commands live in one module per
group; this module puts them in the order ``promise --help`` lists them.
"""

from __future__ import annotations

import typer

from api.cli import authoring, backtest, catalog, evaluate, keys, privacy, quarantine, report, serve

app = typer.Typer(
    name="promise",
    help=(
        "Customer-promise compliance: write promises as YAML, check them, and evaluate "
        "interaction records against them.\n\n"
        "Start with: promise check promises/"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
app.command()(catalog.check)
app.command("compile")(catalog.compile_)
app.command("replay")(evaluate.replay_)
app.command("import")(evaluate.import_)
app.command()(authoring.new)
app.command()(authoring.test)
app.command()(backtest.backtest)
app.command()(serve.serve)
app.command()(serve.worker)
app.command()(serve.dispatcher)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(privacy.customer_app, name="customer")
app.add_typer(quarantine.quarantine_app, name="quarantine")
app.add_typer(privacy.retention_app, name="retention")
app.command()(report.report)
app.command()(catalog.docs)

if __name__ == "__main__":
    app()
