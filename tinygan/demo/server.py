"""The demo's web server: one page and a small JSON/PNG API, on the standard library's HTTP server.

    python -m tinygan demo [RUN_OR_CHECKPOINT] [--host 127.0.0.1] [--port 8000]

    GET  /                          the page (page.html beside this file: HTML, CSS, JavaScript, nothing fetched
                                    from elsewhere, so it works offline)
    GET  /api/info                  the model, and whether a discriminator and a training run are there
    GET  /api/faces?seeds=0-15      one face per seed: JSON {"seeds": [...], "images": [PNG data URLs]}
    GET  /api/walk?a=3&b=14&t=0.5   the face at t of the slerp path from seed a to seed b: PNG (a seed may be
                                    p7: the z that projection 7 found)
    GET  /api/arithmetic?a=1,2&b=3&c=4,5   mean(A) - mean(B) + mean(C), with every group's faces: PNG
    POST /api/judge                 an uploaded image (multipart form field "image", or the raw bytes), and
                                    optional form fields "box" (left,top,side) or "eyes" (xl,yl,xr,yr) that
                                    frame it, "explain" (1: where D looks): JSON {"probability", "verdict",
                                    "is_face", "crop", "face": what D saw, "explain", "role", "warning"}
    POST /api/project               an uploaded photo (framed as for /api/judge: "box" or "eyes") to find in G:
                                    JSON {"id", "photo": what is projected, "crop", "steps", "seconds",
                                    "features": whether D's features count}; one at a time (409)
    GET  /api/project?id=7&since=0  its progress: JSON {"state", "step", "steps", "distance", "psnr", "seconds",
                                    "frames": the best face every few steps from frame "since" on, "count"}
    GET  /api/run                   the run's progress: step, img/s, ETA, loss-log rows, FID rows
    GET  /api/run/samples.png       the run's newest fixed-noise grid
    HEAD any of the GETs; OPTIONS   says which methods there are

Safe to leave running, as careful as Jupyter's server:
- who: it listens on 127.0.0.1 unless --host says otherwise, answers only its own Host names, refuses requests
  from other sites' pages, and asks for a token when it listens beyond this machine (guard.py);
- how much: uploads are bounded in bytes, in form parts and in decoded size, and read UPLOAD_SLOTS at a time
  (uploads.py); one projection runs at a time, for at most finding.SECONDS; a fixed pool of threads answers,
  and a client gets HEADER_SECONDS for its headers (connections.py) and BODY_SECONDS for its upload (handler.py,
  the HTTP side of every request);
- what: nothing the client sends becomes a file path; a damaged run folder leaves the last good state serving
  (reading.py); the page never sees an absolute path.
The networks keep activations between forward and backward and are not thread-safe, so every model call holds
one lock. Every error, the standard library's own included, is a 4xx or 5xx status with one line of JSON, and a
client that hangs up is no news.
"""
import base64
import errno
import io
import json
import socket
import threading
from http import HTTPStatus
from pathlib import Path

from .. import judge, sampling
from ..images import CELEBA_CROP, GUIDE
from .connections import PooledHTTPServer
from .finding import Projections
from .guard import Guard, is_loopback, new_token
from .reading import Models, newest_sample, run_progress
from .handler import UPLOAD_SLOTS, GuardedHandler
from .uploads import BadRequest, check_image, uploaded_image

PAGE = Path(__file__).with_name("page.html")
MAX_SEEDS = 64                             # faces per /api/faces request
MAX_SEED = 2 ** 32 - 1


# --- reading requests ----------------------------------------------------------------

def seeds_parameter(query, name, most=MAX_SEEDS):
    """A seed list like the CLI's ('0-15', '1,5,9'), checked: BadRequest otherwise."""
    text = query.get(name, [""])[0]
    try:
        seeds = sampling.parse_seeds(text, z_files=False)
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
             "/api/arithmetic": "arithmetic", "/api/project": "projected", "/api/run": "run",
             "/api/run/samples.png": "run_samples"}
POST_PATHS = {"/api/judge": "judge", "/api/project": "project"}


class Handler(GuardedHandler):
    """What the demo's paths answer; the HTTP around it is GuardedHandler's."""
    GET_PATHS, POST_PATHS = GET_PATHS, POST_PATHS
    models = projections = None                 # set by make_server

    # --- GET -------------------------------------------------------------------------
    def page(self, query):
        return HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8"

    def info(self, query):
        models = self.models
        with models.lock:
            models.refresh()
            body = {"model": dict(models.G.config), "discriminator": models.D is not None,
                    "run": models.run is not None, "checkpoint": models.display_name(models.loaded_from),
                    "problem": models.problem, "warning": judge.JUDGE_WARNING,
                    "judge": None if models.D is None else models.D.role, "guide": GUIDE, "crop": CELEBA_CROP}
        return as_json(body)

    def faces(self, query):
        seeds = seeds_parameter(query, "seeds")
        with self.models.lock:
            self.models.refresh()
            faces = sampling.generate_images(self.models.G, seeds)
        return as_json({"seeds": seeds, "images": [data_url(face) for face in faces]})

    def walk_end(self, query, name):
        """A seed, or 'p7': the z that projection 7 found."""
        text = query.get(name, [""])[0]
        if text.startswith("p") and text[1:].isascii() and text[1:].isdigit() and len(text) < 12:
            return self.projections.z(int(text[1:]))[0]
        return int(number_parameter(query, name, 0, MAX_SEED, int))

    def walk(self, query):
        a, b = (self.walk_end(query, name) for name in ("a", "b"))
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

    def projected(self, query):
        job = int(number_parameter(query, "id", 1, 2 ** 31, int))
        since = int(number_parameter(query, "since", 0, 10 ** 6, int)) if query.get("since") else 0
        answer = self.projections.status(job, since)
        answer["frames"] = [data_url(face) for face in answer["frames"]]
        return as_json(answer)

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
    def framed_upload(self, body, image_size):
        """The uploaded photo framed as its fields say (box, eyes, or the training crop): (uint8 face, in words)."""
        from ..images import parse_eyes, parse_numbers, prepare_for_judging
        data, fields = uploaded_image(self.headers.get("Content-Type", ""), body)
        try:
            box = parse_numbers(fields["box"], 3, "box (left,top,side)") if fields.get("box") else None
            eyes = parse_eyes(fields["eyes"], "eyes (xl,yl,xr,yr)") if fields.get("eyes") else None
        except ValueError as err:
            raise BadRequest(str(err)) from None
        check_image(data)
        try:
            return prepare_for_judging(data, image_size, box=box, eyes=eyes) + (fields,)
        except ValueError as err:
            raise BadRequest(f"cannot use this image: {err}", HTTPStatus.UNPROCESSABLE_ENTITY) from None

    def image_size(self, need_d=False):
        with self.models.lock:
            self.models.refresh()
            if need_d and self.models.D is None:
                raise BadRequest(f"{self.models.display_name(self.models.loaded_from)} holds no discriminator "
                                 "to judge with", HTTPStatus.CONFLICT)
            return self.models.G.config["image_size"]

    def judge(self, body):
        from .. import judge
        face, crop, fields = self.framed_upload(body, self.image_size(need_d=True))    # decoded outside the lock
        with self.models.lock:
            D, faces = self.models.D, self.models.faces
            if D is None:                                       # a newer checkpoint without D loaded meanwhile
                raise BadRequest("the model holds no discriminator to judge with", HTTPStatus.CONFLICT)
            answer = judge.judge_faces(D, face[None], faces)[0]
            if fields.get("explain") == "1":
                answer["explain"] = data_url(judge.saliency_picture(face, judge.saliency(D, face)))
        return as_json(dict(answer, crop=crop, face=data_url(face), role=D.role, warning=judge.JUDGE_WARNING,
                            not_a_face=None if answer["is_face"] else judge.NOT_A_FACE))

    def project(self, body):
        face, crop, _ = self.framed_upload(body, self.image_size())
        with self.models.lock:
            job = self.projections.start(self.models.G, self.models.D, face)
        return as_json({"id": job, "photo": data_url(face), "crop": crop, "steps": self.projections.steps,
                        "seconds": self.projections.seconds, "features": self.models.D is not None})


def make_server(source=None, host="127.0.0.1", port=8000, raw=False, token=None):
    """A server of the demo for ``source`` (a run folder, a checkpoint, or None: pretrained), not yet serving.

    ``token``: a string that every request must carry; by default a new one when ``host`` is not this machine's
    loopback, none otherwise. It is ``server.token``.
    """
    models = Models(source, raw=raw)
    handler = type("DemoHandler", (Handler,), {"models": models, "upload_slots": threading.Semaphore(UPLOAD_SLOTS),
                                               "projections": Projections()})
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
