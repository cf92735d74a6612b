"""``python -m tinygan demo``: a local web page to paint faces, walk between them, do face arithmetic,
judge an uploaded photo, and watch a training run (see server.py)."""
from .server import make_server, serve  # noqa: F401
