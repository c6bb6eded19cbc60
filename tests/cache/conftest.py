"""Fixtures of the cache tests: a loopback HTTP server standing in for a lab's static file server."""

import functools
import http.server
import socket
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


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture()
def stalled():
    """The URL of a server that accepts connections and never answers (a listening socket nobody reads)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


class _LoginPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!DOCTYPE html><html><body><form>Sign in to continue</form></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture()
def login_page():
    """The URL of a server that answers every request with an HTML login page and status 200."""
    server = _serve(_LoginPage)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def flaky(tmp_path):
    """A server of tmp_path whose first answer is HTTP 503, and the list of statuses it sent."""
    sent = []

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def send_head(self):
            if not sent:
                sent.append(503)
                self.send_error(503, "busy")
                return None
            sent.append(200)
            return super().send_head()

        def log_message(self, *args):
            pass

    server = _serve(Flaky)
    yield f"http://127.0.0.1:{server.server_address[1]}", sent
    server.shutdown()
    server.server_close()
