"""tinygan demo: the local web page (tinygan.demo)."""
from ..options import HelpFormatter, add_backend, port_number


def add_demo(sub):
    p = sub.add_parser("demo", help="a local web page to paint faces, walk, judge a photo and watch a run",
                       formatter_class=HelpFormatter,
                       description="A web page served from this machine (Python's own HTTP server): paint faces, "
                                   "walk between them, do face arithmetic, judge a photo, and watch a run train.")
    p.add_argument("run", nargs="?", help="run folder or checkpoint (default: the pretrained generator and its D)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (only this machine by default; any "
                   "other needs the token printed in the URL)")
    p.add_argument("--port", type=port_number, default=8000, help="port, 0-65535 (0: any free port)")
    p.add_argument("--raw", action="store_true", help="use a checkpoint's raw G, not its averaged G_ema")
    add_backend(p)
    p.set_defaults(func=demo)


def demo(args):
    from ..demo import serve
    return serve(args.run, host=args.host, port=args.port, raw=args.raw)
