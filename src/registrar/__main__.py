"""`python -m registrar`: the same command as `registrar`."""

from registrar.cli.main import app

app(prog_name="registrar")
