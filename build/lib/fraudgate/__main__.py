from fraudgate.cli import app

app(prog_name="fraudgate")
