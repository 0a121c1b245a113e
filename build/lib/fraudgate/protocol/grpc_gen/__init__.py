"""Generated from inference.proto with grpcio-tools (see the comment at the top of that file)."""
