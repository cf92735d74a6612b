"""The demo's web server: one page and a small JSON/PNG API, on the standard library's HTTP server.

    python -m tinygan demo [RUN_OR_CHECKPOINT] [--host 127.0.0.1] [--port 8000]

    GET  /                          the page (page.html beside this file: HTML, CSS, JavaScript, nothing fetched
                                    from elsewhere, so it works offline)
    GET  /api/info                  the model, and whether a discriminator and a training run are there
    GET  /api/faces?seeds=0-15      one face per seed: JSON {"seeds": [...], "images": [PNG data URLs]}
    GET  /api/walk?a=3&b=14&t=0.5   the face at t of the slerp path from seed a to seed b: PNG
    GET  /api/arithmetic?a=1,2&b=3&c=4,5   mean(A) - mean(B) + mean(C), with every group's faces: PNG
    POST /api/judge                 an uploaded image (multipart form field "image", or the raw bytes):
                                    JSON {"probability", "verdict", "crop", "face": what D saw, "warning"}
    GET  /api/run                   the run's progress: step, img/s, ETA, loss-log rows, FID rows
    GET  /api/run/samples.png       the run's newest fixed-noise grid

Safe by default. It listens on 127.0.0.1 (this machine only) unless --host says
otherwise. Uploads are limited in bytes (MAX_UPLOAD_BYTES) and pixels
(MAX_UPLOAD_PIXELS, checked before decoding: decompression bombs), and only image
formats are decoded. Nothing the client sends becomes a file path: the run's files
are found by the server. The networks keep activations between forward and backward
and are not thread-safe, so every model call holds one lock. A bad request gets a
4xx status with a one-line reason, and the server keeps serving.
"""
import base64
import email.parser
import email.policy
import errno
import io
import json
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from .. import checkpoint, sampling

PAGE = Path(__file__).with_name("page.html")
MAX_UPLOAD_BYTES = 10 * 1024 * 1024        # 10 MB
MAX_UPLOAD_PIXELS = 40_000_000             # decoded pixels; PIL would decode a 'bomb' of 10^10
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
MAX_SEEDS = 64                             # faces per /api/faces request
MAX_SEED = 2 ** 32 - 1


class BadRequest(ValueError):
    """A client error: answered with ``status`` and the message as one line."""

    def __init__(self, message, status=HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class Models:
    """G and D of a run, a checkpoint or the pretrained file, reloaded when a run writes a newer checkpoint.

    Every use goes through ``with models.lock``: the modules are not thread-safe.
    """

    def __init__(self, source=None, raw=False):
        self.source, self.raw = (Path(source) if source else None), raw
        self.run = self.source if self.source is not None and self.source.is_dir() else None
        self.lock = threading.Lock()
        self.loaded_from = None
        self.G = self.D = None
        self.refresh()

    def newest(self):
        if self.run is not None:
            return checkpoint.find_checkpoint(self.run)
        return self.source if self.source is not None else sampling.PRETRAINED

    def refresh(self):
        """Load G (and D, if the file has one) again when the newest checkpoint changed."""
        path = self.newest()
        if path == self.loaded_from:
            return
        self.G = sampling.load_generator(path, raw=self.raw)
        try:
            self.D = sampling.load_discriminator(path)
        except ValueError:
            self.D = None
        self.loaded_from = path


# --- reading requests ----------------------------------------------------------------

def seeds_parameter(query, name, most=MAX_SEEDS):
    """A seed list like the CLI's ('0-15', '1,5,9'), checked: BadRequest otherwise."""
    from ..cli import parse_seeds
    text = query.get(name, [""])[0]
    try:
        seeds = parse_seeds(text)
    except Exception as err:                        # argparse.ArgumentTypeError
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


def uploaded_image(headers, body):
    """The image bytes of a judge request: a multipart form's 'image' field, or the body itself."""
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        if not message.is_multipart():
            raise BadRequest("malformed multipart form (no boundary or no parts)")
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "image":
                data = part.get_payload(decode=True)
                if data:
                    return data
        raise BadRequest("the form has no file in a field named 'image'")
    if not body:
        raise BadRequest("no image: send one in a form field named 'image', or as the request body")
    return body


def check_image(data):
    """Refuse what is not an image of an allowed format, or has too many pixels, before decoding it."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as img:                 # reads the header only
            fmt, (width, height) = img.format, img.size
    except Exception:                                              # PIL raises many kinds
        raise BadRequest("not an image tinygan can read (expected JPEG, PNG, WebP, BMP or GIF)",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE) from None
    if fmt not in IMAGE_FORMATS:
        raise BadRequest(f"{fmt} images are not accepted; expected one of {', '.join(IMAGE_FORMATS)}",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    if width * height > MAX_UPLOAD_PIXELS:
        raise BadRequest(f"the image has {width}x{height} pixels, more than {MAX_UPLOAD_PIXELS:,}",
                         HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


# --- answers -------------------------------------------------------------------------

def png_bytes(pixels):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(pixels):
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def run_progress(run):
    """The run's log, FID log and timing, read from its folder: a JSON-able dict."""
    log = run / "loss_log.csv"
    rows = checkpoint.read_loss_log(log) if log.is_file() else []
    fid_rows = checkpoint.read_loss_log(run / "fid_log.csv") if (run / "fid_log.csv").is_file() else []
    config_file = run / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    progress = {"rows": rows[-2000:], "fid": fid_rows, "step": rows[-1]["step"] if rows else 0,
                "updated_seconds_ago": time.time() - log.stat().st_mtime if rows else None}
    if rows and rows[-1]["epoch"]:
        per_epoch = rows[-1]["step"] / rows[-1]["epoch"]
        total = config.get("max_steps") or round(config.get("epochs", 0) * per_epoch)
        recent = [r["img_per_s"] for r in rows[-10:]]
        img_per_s = float(np.median(recent))
        steps_left = max(total - progress["step"], 0)
        progress.update(total_steps=total, img_per_s=img_per_s,
                        eta_seconds=steps_left * config.get("batch_size", 128) / img_per_s if img_per_s else None)
    grids = sorted((run / "samples").glob("step_*.png"))
    progress["samples_step"] = int(grids[-1].stem.split("_")[1]) if grids else None
    return progress


GET_PATHS = {"/": "page", "/index.html": "page", "/api/info": "info", "/api/faces": "faces", "/api/walk": "walk",
             "/api/arithmetic": "arithmetic", "/api/run": "run", "/api/run/samples.png": "run_samples"}


class Handler(BaseHTTPRequestHandler):
    server_version = "tinygan-demo"
    models = None                       # set by make_server

    def log_message(self, fmt, *args):  # quiet: the terminal shows the URL and errors only
        pass

    def send_body(self, status, body, content_type, elapsed=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if elapsed is not None:
            self.send_header("X-Elapsed-Ms", f"{elapsed * 1e3:.1f}")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, payload, status=HTTPStatus.OK, elapsed=None):
        self.send_body(status, json.dumps(payload).encode(), "application/json", elapsed)

    def send_error_line(self, status, message):
        self.send_json({"error": " ".join(str(message).split())}, status)

    def handle_safely(self, answer):
        start = time.perf_counter()
        try:
            status, body, content_type = answer()
        except BadRequest as err:
            self.send_error_line(err.status, err)
        except (ValueError, FileNotFoundError) as err:     # a request the model cannot serve
            self.send_error_line(HTTPStatus.BAD_REQUEST, err)
        except Exception as err:                           # a bug: say so, keep serving
            print(f"tinygan demo: error answering {self.path}: {type(err).__name__}: {err}", file=sys.stderr)
            self.send_error_line(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(err).__name__}: {err}")
        else:
            self.send_body(status, body, content_type, time.perf_counter() - start)

    # --- GET -------------------------------------------------------------------------
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        route = getattr(self, GET_PATHS[url.path]) if url.path in GET_PATHS else None
        if route is None:
            self.send_error_line(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")
            return
        self.handle_safely(lambda: route(query))

    def page(self, query):
        return HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8"

    def info(self, query):
        models = self.models
        with models.lock:
            models.refresh()
            config = dict(models.G.config)
            has_d = models.D is not None
            loaded = str(models.loaded_from)
        body = {"model": config, "discriminator": has_d, "run": models.run is not None, "checkpoint": loaded,
                "warning": sampling_warning()}
        return HTTPStatus.OK, json.dumps(body).encode(), "application/json"

    def faces(self, query):
        seeds = seeds_parameter(query, "seeds")
        with self.models.lock:
            self.models.refresh()
            faces = sampling.generate_images(self.models.G, seeds)
        body = {"seeds": seeds, "images": [data_url(face) for face in faces]}
        return HTTPStatus.OK, json.dumps(body).encode(), "application/json"

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

    def run(self, query):
        if self.models.run is None:
            raise BadRequest("the demo was started without a training run folder", HTTPStatus.NOT_FOUND)
        return HTTPStatus.OK, json.dumps(run_progress(self.models.run)).encode(), "application/json"

    def run_samples(self, query):
        if self.models.run is None:
            raise BadRequest("the demo was started without a training run folder", HTTPStatus.NOT_FOUND)
        grids = sorted((self.models.run / "samples").glob("step_*.png"))
        if not grids:
            raise BadRequest("the run has written no sample grid yet", HTTPStatus.NOT_FOUND)
        return HTTPStatus.OK, grids[-1].read_bytes(), "image/png"

    # --- POST ------------------------------------------------------------------------
    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/judge":
            status = HTTPStatus.METHOD_NOT_ALLOWED if url.path in GET_PATHS else HTTPStatus.NOT_FOUND
            self.send_error_line(status, f"cannot POST to {url.path}; only /api/judge takes uploads")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.send_error_line(HTTPStatus.LENGTH_REQUIRED, "the upload needs a Content-Length header")
            return
        if int(length) > MAX_UPLOAD_BYTES:
            remaining = int(length) if int(length) <= 8 * MAX_UPLOAD_BYTES else 0
            while remaining > 0:                          # read and drop it, so that the client gets the answer
                chunk = self.rfile.read(min(1 << 20, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            self.send_error_line(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 f"the upload has {int(length):,} bytes, more than {MAX_UPLOAD_BYTES:,}")
            return
        body = self.rfile.read(int(length))
        self.handle_safely(lambda: self.judge(body))

    def judge(self, body):
        from ..data import prepare_for_judging
        data = uploaded_image(self.headers, body)
        check_image(data)
        with self.models.lock:
            self.models.refresh()
            if self.models.D is None:
                raise BadRequest(f"{self.models.loaded_from} holds no discriminator to judge with",
                                 HTTPStatus.CONFLICT)
            size = self.models.D.config["image_size"]
            try:
                face, crop = prepare_for_judging(data, size)
            except ValueError as err:
                raise BadRequest(f"cannot use this image: {err}", HTTPStatus.UNPROCESSABLE_ENTITY) from None
            probability = float(sampling.judge(self.models.D, face[None])[0])
        body = {"probability": probability, "verdict": "real" if probability >= 0.5 else "fake", "crop": crop,
                "face": data_url(face), "warning": sampling_warning()}
        return HTTPStatus.OK, json.dumps(body).encode(), "application/json"

    def do_PUT(self):
        self.send_error_line(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported; use GET or POST")

    do_DELETE = do_PATCH = do_PUT


def sampling_warning():
    from ..cli import JUDGE_WARNING
    return JUDGE_WARNING


def make_server(source=None, host="127.0.0.1", port=8000, raw=False):
    """A ThreadingHTTPServer serving the demo for ``source`` (a run folder, a checkpoint, or None: pretrained)."""
    models = Models(source, raw=raw)
    handler = type("DemoHandler", (Handler,), {"models": models})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as err:             # the port is taken, or the host is not an address of this machine
        hint = ("another --port, or --port 0 for any free one" if err.errno == errno.EADDRINUSE else
                "--host with an address of this machine, such as 127.0.0.1")
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror or err} (try {hint})") from None
    server.daemon_threads = True
    return server


def serve(source=None, host="127.0.0.1", port=8000, raw=False):
    """Serve until Ctrl-C; returns 0."""
    server = make_server(source, host, port, raw)
    address, port = server.server_address[:2]
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: other machines on your network can open the demo and upload images")
    models = server.RequestHandlerClass.models
    print(f"tinygan demo: {models.loaded_from} ({'with' if models.D is not None else 'without'} a discriminator)"
          + (f", watching the run in {models.run}" if models.run else ""))
    print(f"open http://{'localhost' if address in ('127.0.0.1', '::1') else address}:{port}/  (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()
    return 0
