"""The `registrar` command (cli/main.py): the only place that prints, exits or knows Typer."""
