"""`python -m fraudgate.serving --config FILE [--host H] [--http-port P] [--grpc-port P]`."""

from fraudgate.serving.cli import app

if __name__ == "__main__":
    app()
