"""How fast the demo answers: server-side time of a 16-face grid, a walk frame and a judgement.

It starts the demo's server on an ephemeral port (nothing else is needed) and times each
request over HTTP from this process, the best of --repeat, plus the server's own X-Elapsed-Ms.
Browser-side timings are printed by tests/test_demo_browser.py (`pytest -s -m browser`).

    python benchmarks/demo.py [--checkpoint RUN_OR_CKPT] [--repeat 5]
"""
import argparse
import io
import os
import sys
import threading
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tinygan.demo import make_server  # noqa: E402
from tinygan.synthetic import synthetic_face  # noqa: E402


def timed(url, data=None, headers=None):
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=60) as answer:
        answer.read()
        server_ms = float(answer.headers["X-Elapsed-Ms"])
    return (time.perf_counter() - start) * 1e3, server_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="run folder, checkpoint or generator file with D (default: pretrained)")
    parser.add_argument("--repeat", type=int, default=5, help="requests per kind; the best is reported")
    args = parser.parse_args()
    server = make_server(args.checkpoint, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    photo = io.BytesIO()
    synthetic_face(np.random.default_rng(0)).save(photo, format="JPEG")
    requests = {"16-face grid": (url + "/api/faces?seeds=0-15", None, None),
                "walk frame": (url + "/api/walk?a=3&b=14&t=0.5", None, None),
                "judgement": (url + "/api/judge", photo.getvalue(), {"Content-Type": "image/jpeg"})}
    print(f"demo of {server.RequestHandlerClass.models.loaded_from}, best of {args.repeat}")
    for name, (address, data, headers) in requests.items():
        timed(address, data, headers)                                 # warm-up
        best = min((timed(address, data, headers) for _ in range(args.repeat)), key=lambda t: t[0])
        print(f"RESULT demo {name}: {best[0]:.1f} ms round trip, {best[1]:.1f} ms in the server")
    server.shutdown()


if __name__ == "__main__":
    main()
