"""The tinygan command line: python -m tinygan COMMAND ... (or: tinygan COMMAND).

    train        train the face DCGAN on CelebA (see --help)
    generate     faces from a checkpoint (or the pretrained generator), one per seed
    interpolate  a strip or GIF along a slerp path between seeds
    arithmetic   z arithmetic: mean(A) - mean(B) + mean(C)
    judge        D's probability that images are real
    project      find a photo in the generator: its z, a seed for the commands above
    gif          the training-progress GIF of a run
    export       a checkpoint's G and D as PyTorch-layout state_dicts (.npz)
    import       a PyTorch-layout generator state_dict (.npz) as a tinygan generator file
    fid          Frechet Inception Distance (and KID) between real and generated faces
    demo         a local web page: paint, walk, do arithmetic, judge a photo, watch a run
    course       the lessons as homework: student copies (assign) and a grader (grade)

Every command checks its arguments before doing anything expensive, and any
error is one line, "tinygan COMMAND: error: ...", with exit status 2.
--debug (anywhere on the line) or TINYGAN_DEBUG=1 prints the error's traceback above that line.
"""
# Each command's parser sits beside the function that runs it, in this package's modules; the work itself is
# the library's (tinygan.train, tinygan.sampling, tinygan.judge, ...).
import argparse
import os
import sys
import traceback

from ..options import use_backend
from . import course, exchange, faces, fid, judge, project, runs, web

COMMANDS = (runs.add_train, faces.add_generate, faces.add_interpolate, faces.add_arithmetic, judge.add_judge,
            project.add_project, runs.add_gif, exchange.add_export, exchange.add_import, fid.add_fid, web.add_demo,
            course.add_course)
# What a user's input can cause, said in one line (--debug adds the traceback); any other exception is a bug and
# shows its traceback anyway.
USER_ERRORS = (ValueError, OSError, RuntimeError, MemoryError)
DEBUG_VALUES = ("1", "true", "yes", "on")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # main() takes --debug out of the line before parsing (so it may stand anywhere); it is here for --help.
    parser.add_argument("--debug", action="store_true", help="print an error's traceback too (anywhere on the "
                        "command line; or TINYGAN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("TINYGAN_DEBUG", "").strip().lower() in DEBUG_VALUES
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        use_backend(getattr(args, "backend", None))
        return args.func(args)
    except USER_ERRORS as err:
        if debug:
            traceback.print_exc()
        command = " ".join(filter(None, (args.command, getattr(args, "course_command", None))))
        print(f"tinygan {command}: error: {error_message(err)}", file=sys.stderr)
        return 2


def error_message(err):
    """One line for an error: an OSError's text without its '[Errno N]' prefix."""
    if isinstance(err, MemoryError):
        return f"out of memory ({err or 'an array was too large'})"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return " ".join(str(err).split()) or type(err).__name__
