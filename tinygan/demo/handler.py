"""The HTTP side of the demo: one request at a time on a pooled connection, every method through the guard,
bodies read within a time limit, and every answer, errors included, with the same safety headers.

What each path answers is the demo's (tinygan.demo.server.Handler, a subclass): GET_PATHS and POST_PATHS map a
path to the name of its method, which returns (status, body, content type) or raises BadRequest.
"""
import io
import json
import sys
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from .connections import PrefixedReader
from .uploads import MAX_UPLOAD_BYTES, BadRequest

UPLOAD_SLOTS = 2                           # uploads read and parsed at once; more are told to retry
IO_SECONDS = 10.0                          # for each read or write on a client's socket
BODY_SECONDS = 30.0                        # for a whole upload: 10 MB at 350 KB/s
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler that asks the guard first, answers errors as one line of JSON and bounds uploads."""
    server_version = "tinygan-demo"
    default_request_version = "HTTP/1.0"        # not 0.9, whose answers have no status line: errors stay JSON
    GET_PATHS, POST_PATHS = {}, {}               # path -> method name, set by the subclass
    guard = upload_slots = None                 # set by make_server
    cookie = None                               # a Set-Cookie that keeps the token of the URL, for this answer

    # --- the connection: (socket, header bytes) from connections.PooledHTTPServer ----------------
    def setup(self):
        self.connection, headers = self.request
        self.connection.settimeout(IO_SECONDS)
        self.rfile = io.BufferedReader(PrefixedReader(headers, self.connection))
        self.wfile = self.connection.makefile("wb")

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError):     # the client hung up or stopped reading: no news
            self.close_connection = True

    def finish(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        for stream in (self.wfile, self.rfile):
            try:
                stream.close()
            except OSError:
                pass

    def log_message(self, fmt, *args):  # quiet: the terminal shows the URL and errors only
        pass

    # --- writing answers ---------------------------------------------------------------------
    def send_body(self, status, body, content_type, elapsed=None, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        if elapsed is not None:
            self.send_header("X-Elapsed-Ms", f"{elapsed * 1e3:.1f}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_line(self, status, message, headers=None):
        body = json.dumps({"error": " ".join(str(message).split())}).encode()
        self.send_body(status, body, "application/json", headers=headers)

    def send_error(self, code, message=None, explain=None):
        """The standard library's errors (a malformed request line, headers too long, ...) as one line of JSON."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.send_error_line(code, message or phrase)

    def handle_safely(self, answer):
        start = time.perf_counter()
        try:
            status, body, content_type = answer()
        except BadRequest as err:
            self.send_error_line(err.status, err)
        except (ValueError, FileNotFoundError) as err:     # a request the model cannot serve
            self.send_error_line(HTTPStatus.BAD_REQUEST, err)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as err:                           # a bug: say so, keep serving
            print(f"tinygan demo: error answering {self.path}: {type(err).__name__}: {err}", file=sys.stderr)
            self.send_error_line(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {err}")
        else:
            headers = {"Set-Cookie": self.cookie} if self.cookie else None
            self.send_body(status, body, content_type, time.perf_counter() - start, headers)

    # --- every method goes through the guard ------------------------------------------------
    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        refusal = self.guard.refusal(self.command, url.path, query, self.headers)
        if refusal:
            self.discard_declared_body()
            self.send_error_line(HTTPStatus.FORBIDDEN, refusal)
            return
        self.cookie = self.guard.cookie_for(query) if url.path in self.GET_PATHS else None
        if self.command != "POST" or url.path not in self.POST_PATHS:
            self.discard_declared_body()
        if url.path not in self.GET_PATHS and url.path not in self.POST_PATHS:
            self.send_error_line(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
        elif self.command == "OPTIONS":
            allowed = ", ".join((["GET", "HEAD"] if url.path in self.GET_PATHS else []) +
                                (["POST"] if url.path in self.POST_PATHS else []) + ["OPTIONS"])
            self.send_response(HTTPStatus.NO_CONTENT)
            self.send_header("Allow", allowed)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.command in ("GET", "HEAD") and url.path in self.GET_PATHS:
            route = getattr(self, self.GET_PATHS[url.path])
            self.handle_safely(lambda: route(query))
        elif self.command == "POST" and url.path in self.POST_PATHS:
            self.receive_upload(getattr(self, self.POST_PATHS[url.path]))
        elif self.command == "POST":
            self.send_error_line(HTTPStatus.METHOD_NOT_ALLOWED,
                                 f"cannot POST to {url.path}; uploads go to {' or '.join(self.POST_PATHS)}")
        else:
            self.send_error_line(HTTPStatus.METHOD_NOT_ALLOWED,
                                 f"{self.command} is not supported here; use GET or POST")

    do_GET = do_HEAD = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = dispatch

    # --- POST ------------------------------------------------------------------------
    def receive_upload(self, route):
        """Read an upload's body, if its size is allowed and an upload slot is free, and answer ``route(body)``."""
        length = self.headers.get("Content-Length")
        self.close_connection = True
        if length is None or not (length.isascii() and length.isdigit()):
            self.send_error_line(HTTPStatus.LENGTH_REQUIRED, "the upload needs a Content-Length header")
            return
        length = int(length)
        if length > MAX_UPLOAD_BYTES:
            self.discard_body(length if length <= 8 * MAX_UPLOAD_BYTES else 0)
            self.send_error_line(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 f"the upload has {length:,} bytes, more than {MAX_UPLOAD_BYTES:,}")
            return
        if not self.upload_slots.acquire(blocking=False):
            self.discard_body(length)
            self.send_error_line(HTTPStatus.SERVICE_UNAVAILABLE,
                                 f"{UPLOAD_SLOTS} uploads are being answered: try again in a moment",
                                 {"Retry-After": "1"})
            return
        try:
            self.handle_safely(lambda: route(self.read_body(length)))
        finally:
            self.upload_slots.release()

    def read_body(self, length, seconds=None, keep=True):
        """The request's body of ``length`` bytes within ``seconds`` (BODY_SECONDS); BadRequest (408, or 400 if it is
        cut short) if not. ``keep`` False reads it into a small buffer, over and over, and returns nothing."""
        seconds = BODY_SECONDS if seconds is None else seconds
        body = bytearray(length if keep else min(length, 1 << 16))
        view, done, deadline = memoryview(body), 0, time.monotonic() + seconds
        while done < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BadRequest(f"the upload took more than {seconds:g} s", HTTPStatus.REQUEST_TIMEOUT)
            self.connection.settimeout(min(left, IO_SECONDS))
            target = view[done:] if keep else view[:length - done]
            try:
                n = self.rfile.readinto1(target)
            except TimeoutError:
                raise BadRequest(f"the upload stalled for {min(left, IO_SECONDS):g} s",
                                 HTTPStatus.REQUEST_TIMEOUT) from None
            if not n:
                raise BadRequest(f"the upload ended after {done:,} of its {length:,} bytes")
            done += n
        return body if keep else None

    def discard_declared_body(self):
        """Drop the body a request not taken as an upload may carry (up to 8 upload sizes); the connection closes."""
        length = self.headers.get("Content-Length", "")
        self.close_connection = True
        if length.isascii() and length.isdigit() and 0 < int(length) <= 8 * MAX_UPLOAD_BYTES:
            self.discard_body(int(length))

    def discard_body(self, length):
        """Read and drop a body that will not be used (for 2 s at most), so that the client reads the answer."""
        try:
            self.read_body(length, seconds=2.0, keep=False)
        except (BadRequest, OSError):
            pass
