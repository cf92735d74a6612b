"""The page's "Find me" tab: projections of uploaded photos (tinygan.projection), one at a time, each in its own
thread on its own copies of G and D (so painting and judging go on meanwhile), with a time limit. The page polls
for the frames as they come; the z of the last KEEP projections stay here, so that the page can walk from one.
"""
import itertools
import math
import threading
import time
from collections import OrderedDict
from http import HTTPStatus

from .. import projection
from .uploads import BadRequest

KEEP = 8                        # finished projections whose z a walk may start from
SECONDS = 45                    # a projection's time limit: the best face so far is its answer
EVERY = 10                      # steps between the frames the page shows


class Projections:
    """The demo's projections: ``start`` one (BadRequest 409 while another runs), ``status`` of one by id, the ``z``
    of a finished one. Thread-safe."""

    def __init__(self, steps=projection.STEPS, seconds=SECONDS, every=EVERY):
        self.steps, self.seconds, self.every = steps, seconds, every
        self.lock = threading.Lock()
        self.jobs = OrderedDict()               # id -> the job's state (a dict), oldest first
        self.ids = itertools.count(1)

    def start(self, G, D, face):
        """Project ``face`` (uint8 (S, S, 3), framed) with copies of G and D (the caller holds the models' lock):
        returns the new projection's id."""
        with self.lock:
            if any(job["state"] == "running" for job in self.jobs.values()):
                raise BadRequest("a projection is under way; one at a time (wait for it to finish)",
                                 HTTPStatus.CONFLICT)
            G, D = weights_of(G), None if D is None else weights_of(D)
            job_id = next(self.ids)
            job = {"state": "running", "step": 0, "steps": self.steps, "distance": None, "psnr": None,
                   "frames": [], "z": None, "error": None, "started": time.monotonic(), "ended": None}
            thread = threading.Thread(target=self._run, args=(job, G, D, face), daemon=True,
                                      name=f"projection {job_id}")
            thread.start()                      # before the job is listed: a thread that cannot start blocks nothing
            self.jobs[job_id] = job
            while len(self.jobs) > KEEP:
                self.jobs.popitem(last=False)
        return job_id

    def _run(self, job, G, D, face):
        def report(step, distance, best_face):
            with self.lock:
                job.update(step=step, distance=distance, psnr=projection.psnr(best_face, face))
                job["frames"].append(best_face)

        try:
            result = projection.project(G, face, D, steps=self.steps, every=self.every, report=report,
                                        seconds=self.seconds)
            with self.lock:
                job.update(state="done", z=result["z"], step=result["steps"], distance=result["distance"],
                           psnr=result["psnr"], ended=time.monotonic())
        except Exception as err:        # a bug must not leave the page polling for ever: it is told what failed
            with self.lock:
                job.update(state="failed", error=f"the projection failed: {type(err).__name__}: {err}",
                           ended=time.monotonic())

    def status(self, job_id, since=0):
        """The job's progress: state, step, steps, distance, psnr, seconds, error, and its frames from ``since``
        on (uint8 faces; the last is the best so far)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise BadRequest(f"no projection {job_id} (the page keeps the last {KEEP})", HTTPStatus.NOT_FOUND)
            answer = {key: job[key] for key in ("state", "step", "steps", "distance", "psnr", "error")}
            for key in ("distance", "psnr"):                  # JSON has no infinity: an exact match's PSNR is null
                if answer[key] is not None and not math.isfinite(answer[key]):
                    answer[key] = None
            answer["seconds"] = round((job["ended"] or time.monotonic()) - job["started"], 1)
            answer["frames"] = list(job["frames"][since:])
            answer["count"] = len(job["frames"])
        return answer

    def z(self, job_id):
        """The z a finished projection found, (1, nz, 1, 1)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job["z"] is None:
                raise BadRequest(f"no finished projection {job_id} to walk from", HTTPStatus.NOT_FOUND)
            return job["z"]


def weights_of(module):
    """A module of the same kind and config holding the same weights, and nothing else: no cached activations
    or work arrays (a copy.deepcopy of the demo's G would take them along, 280 MB after one batch of faces)."""
    twin = type(module)(**module.config).load_state_dict(module.state_dict()).eval()
    twin.role = getattr(module, "role", None)
    return twin
