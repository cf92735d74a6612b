"""The demo's web server: one page and a small JSON/PNG API, on the standard library's HTTP server.

    python -m tinygan demo [RUN_OR_CHECKPOINT] [--host 127.0.0.1] [--port 8000]

    GET  /                          the page (page.html beside this file: HTML, CSS, JavaScript, nothing fetched
                                    from elsewhere, so it works offline)
    GET  /api/info                  the model, and whether a discriminator and a training run are there
    GET  /api/faces?seeds=0-15      one face per seed: JSON {"seeds": [...], "images": [PNG data URLs]}
    GET  /api/walk?a=3&b=14&t=0.5   the face at t of the slerp path from seed a to seed b: PNG
    GET  /api/arithmetic?a=1,2&b=3&c=4,5   mean(A) - mean(B) + mean(C), with every group's faces: PNG
    POST /api/judge                 an uploaded image (multipart form field "image", or the raw bytes), and
                                    optional form fields "box" (left,top,side) or "eyes" (xl,yl,xr,yr) that
                                    frame it, "explain" (1: where D looks): JSON {"probability", "verdict",
                                    "is_face", "crop", "face": what D saw, "explain", "role", "warning"}
    GET  /api/run                   the run's progress: step, img/s, ETA, loss-log rows, FID rows
    GET  /api/run/samples.png       the run's newest fixed-noise grid
    HEAD any of the GETs; OPTIONS   says which methods there are

Safe to leave running, as careful as Jupyter's server:
- who: it listens on 127.0.0.1 unless --host says otherwise, answers only its own Host names, refuses requests
  from other sites' pages, and asks for a token when it listens beyond this machine (guard.py);
- how much: uploads are bounded in bytes, in form parts and in decoded size, and read UPLOAD_SLOTS at a time
  (uploads.py); a fixed pool of threads answers, and a client gets HEADER_SECONDS for its headers and
  BODY_SECONDS for its upload (connections.py);
- what: nothing the client sends becomes a file path; a damaged run folder leaves the last good state serving
  (run_folder.py); the page never sees an absolute path.
The networks keep activations between forward and backward and are not thread-safe, so every model call holds
one lock. Every error, the standard library's own included, is a 4xx or 5xx status with one line of JSON, and a
client that hangs up is no news.
"""
import base64
import errno
import io
import json
import socket
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from .. import sampling
from ..images import CELEBA_CROP, GUIDE
from .connections import PooledHTTPServer, PrefixedReader
from .guard import Guard, is_loopback, new_token
from .run_folder import Models, newest_sample, run_progress
from .uploads import MAX_UPLOAD_BYTES, BadRequest, check_image, uploaded_image

PAGE = Path(__file__).with_name("page.html")
MAX_SEEDS = 64                             # faces per /api/faces request
MAX_SEED = 2 ** 32 - 1
UPLOAD_SLOTS = 2                           # uploads read and parsed at once; more are told to retry
IO_SECONDS = 10.0                          # for each read or write on a client's socket
BODY_SECONDS = 30.0                        # for a whole upload: 10 MB at 350 KB/s
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


# --- reading requests ----------------------------------------------------------------

def seeds_parameter(query, name, most=MAX_SEEDS):
    """A seed list like the CLI's ('0-15', '1,5,9'), checked: BadRequest otherwise."""
    text = query.get(name, [""])[0]
    try:
        seeds = sampling.parse_seeds(text)
    except ValueError as err:
        raise BadRequest(f"{name}: {err}") from None
    if len(seeds) > most or max(seeds) > MAX_SEED:
        raise BadRequest(f"{name}: at most {most} seeds, each at most {MAX_SEED}, got {len(seeds)} up to {max(seeds)}")
    return seeds


def number_parameter(query, name, low, high, kind=float):
    text = query.get(name, [""])[0]
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest(f"{name} must be a number from {low} to {high}, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be a number from {low} to {high}, got {value}")
    return value


# --- answers -------------------------------------------------------------------------

def png_bytes(pixels):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(pixels):
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def as_json(payload):
    return HTTPStatus.OK, json.dumps(payload).encode(), "application/json"


GET_PATHS = {"/": "page", "/index.html": "page", "/api/info": "info", "/api/faces": "faces", "/api/walk": "walk",
             "/api/arithmetic": "arithmetic", "/api/run": "run", "/api/run/samples.png": "run_samples"}
POST_PATHS = {"/api/judge": "judge"}


class Handler(BaseHTTPRequestHandler):
    server_version = "tinygan-demo"
    default_request_version = "HTTP/1.0"        # not 0.9, whose answers have no status line: errors stay JSON
    models = guard = upload_slots = None        # set by make_server
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
        self.cookie = self.guard.cookie_for(query) if url.path in GET_PATHS else None
        if self.command != "POST" or url.path not in POST_PATHS:
            self.discard_declared_body()
        if url.path not in GET_PATHS and url.path not in POST_PATHS:
            self.send_error_line(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
        elif self.command == "OPTIONS":
            allowed = "POST, OPTIONS" if url.path in POST_PATHS else "GET, HEAD, OPTIONS"
            self.send_response(HTTPStatus.NO_CONTENT)
            self.send_header("Allow", allowed)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.command in ("GET", "HEAD") and url.path in GET_PATHS:
            route = getattr(self, GET_PATHS[url.path])
            self.handle_safely(lambda: route(query))
        elif self.command == "POST" and url.path in POST_PATHS:
            self.receive_upload()
        elif self.command == "POST":
            self.send_error_line(HTTPStatus.METHOD_NOT_ALLOWED,
                                 f"cannot POST to {url.path}; only /api/judge takes uploads")
        else:
            self.send_error_line(HTTPStatus.METHOD_NOT_ALLOWED,
                                 f"{self.command} is not supported here; use GET or POST")

    do_GET = do_HEAD = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = dispatch

    # --- GET -------------------------------------------------------------------------
    def page(self, query):
        return HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8"

    def info(self, query):
        models = self.models
        with models.lock:
            models.refresh()
            body = {"model": dict(models.G.config), "discriminator": models.D is not None,
                    "run": models.run is not None, "checkpoint": models.display_name(models.loaded_from),
                    "problem": models.problem, "warning": sampling.JUDGE_WARNING,
                    "judge": None if models.D is None else models.D.role, "guide": GUIDE, "crop": CELEBA_CROP}
        return as_json(body)

    def faces(self, query):
        seeds = seeds_parameter(query, "seeds")
        with self.models.lock:
            self.models.refresh()
            faces = sampling.generate_images(self.models.G, seeds)
        return as_json({"seeds": seeds, "images": [data_url(face) for face in faces]})

    def walk(self, query):
        a, b = (int(number_parameter(query, name, 0, MAX_SEED, int)) for name in ("a", "b"))
        t = number_parameter(query, "t", 0.0, 1.0)
        with self.models.lock:
            self.models.refresh()
            face = sampling.walk(self.models.G, a, b, t)
        return HTTPStatus.OK, png_bytes(face), "image/png"

    def arithmetic(self, query):
        groups = [seeds_parameter(query, name, most=16) for name in "abc"]
        with self.models.lock:
            self.models.refresh()
            faces, result = sampling.vector_arithmetic(self.models.G, *groups)
        from ..viz import make_grid
        picture = make_grid(sampling.arithmetic_picture(faces, result), nrow=max(len(g) for g in groups) + 1)
        return HTTPStatus.OK, png_bytes(picture), "image/png"

    def the_run(self):
        if self.models.run is None:
            raise BadRequest("the demo was started without a training run folder", HTTPStatus.NOT_FOUND)
        return self.models.run

    def run(self, query):
        progress = run_progress(self.the_run())
        with self.models.lock:
            progress["problem"] = self.models.problem
        return as_json(progress)

    def run_samples(self, query):
        grid = newest_sample(self.the_run())
        if grid is None:
            raise BadRequest("the run has written no sample grid yet", HTTPStatus.NOT_FOUND)
        return HTTPStatus.OK, grid.read_bytes(), "image/png"

    # --- POST ------------------------------------------------------------------------
    def receive_upload(self):
        """Read an upload's body, if its size is allowed and an upload slot is free, and judge it."""
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
                                 f"{UPLOAD_SLOTS} uploads are being judged: try again in a moment",
                                 {"Retry-After": "1"})
            return
        try:
            self.handle_safely(lambda: self.judge(self.read_body(length)))
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

    def judge(self, body):
        from .. import judge
        from ..images import parse_eyes, parse_numbers, prepare_for_judging
        data, fields = uploaded_image(self.headers.get("Content-Type", ""), body)
        try:
            box = parse_numbers(fields["box"], 3, "box (left,top,side)") if fields.get("box") else None
            eyes = parse_eyes(fields["eyes"], "eyes (xl,yl,xr,yr)") if fields.get("eyes") else None
        except ValueError as err:
            raise BadRequest(str(err)) from None
        check_image(data)
        with self.models.lock:
            self.models.refresh()
            D, faces = self.models.D, self.models.faces
            if D is None:
                raise BadRequest(f"{self.models.display_name(self.models.loaded_from)} holds no discriminator "
                                 "to judge with", HTTPStatus.CONFLICT)
            try:
                face, crop = prepare_for_judging(data, D.config["image_size"], box=box, eyes=eyes)
            except ValueError as err:
                raise BadRequest(f"cannot use this image: {err}", HTTPStatus.UNPROCESSABLE_ENTITY) from None
            answer = judge.judge_faces(D, face[None], faces)[0]
            if fields.get("explain") == "1":
                answer["explain"] = data_url(judge.saliency_picture(face, judge.saliency(D, face)))
        return as_json(dict(answer, crop=crop, face=data_url(face), role=D.role, warning=sampling.JUDGE_WARNING,
                            not_a_face=None if answer["is_face"] else judge.NOT_A_FACE))


def make_server(source=None, host="127.0.0.1", port=8000, raw=False, token=None):
    """A server of the demo for ``source`` (a run folder, a checkpoint, or None: pretrained), not yet serving.

    ``token``: a string that every request must carry; by default a new one when ``host`` is not this machine's
    loopback, none otherwise. It is ``server.token``.
    """
    models = Models(source, raw=raw)
    handler = type("DemoHandler", (Handler,), {"models": models, "upload_slots": threading.Semaphore(UPLOAD_SLOTS)})
    try:
        server = PooledHTTPServer((host, port), handler)
    except OSError as err:             # the port is taken, or the host is not an address of this machine
        hint = ("another --port, or --port 0 for any free one" if err.errno == errno.EADDRINUSE else
                "--host with an address of this machine, such as 127.0.0.1")
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror or err} (try {hint})") from None
    server.token = token if token is not None or is_loopback(host) else new_token()
    handler.guard = Guard(host, server.server_address[1], server.token)
    return server


def serve(source=None, host="127.0.0.1", port=8000, raw=False):
    """Serve until Ctrl-C; returns 0."""
    server = make_server(source, host, port, raw)
    address, port = server.server_address[:2]
    models = server.RequestHandlerClass.models
    print(f"tinygan demo: {models.loaded_from} ({'with' if models.D is not None else 'without'} a discriminator)"
          + (f", watching the run in {models.run}" if models.run else ""))
    if server.token:
        print(f"warning: listening on {host}: other machines on your network can reach the demo; it answers only "
              "requests that carry the token of this URL")
    name = "localhost" if is_loopback(address) else socket.gethostname() if address in ("0.0.0.0", "::") else address
    url = f"http://{name}:{port}/" + (f"?token={server.token}" if server.token else "")
    print(f"open {url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()
    return 0
