"""Fixtures of the cache tests: a loopback HTTP server standing in for a lab's static file server."""

import functools
import http.server
import threading

import pytest


@pytest.fixture()
def served(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path, and its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
