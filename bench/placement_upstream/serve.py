"""Fallback server for upstream Placement when gunicorn is not installable: the stdlib WSGI
server, one thread per request. Runs inside the upstream virtualenv:

    OS_PLACEMENT_CONFIG_DIR=DIR .bench-venvs/placement/bin/python serve.py PORT
"""

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def main() -> None:
    from placement.wsgi.api import application

    port = int(sys.argv[1])
    make_server("127.0.0.1", port, application, ThreadingWSGIServer, QuietHandler).serve_forever()


if __name__ == "__main__":
    main()
