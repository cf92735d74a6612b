"""``python -m tinygan ...``: the command line (see tinygan.cli)."""
import sys

from . import cli
from .blas import restart_with_blas_threads_asleep


def command(argv):
    """The command of a command line: its first word that is not an option (--debug may come first)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main():
    """The program: ``train`` first restarts itself with OpenBLAS's idle threads asleep (tinygan.blas)."""
    if command(sys.argv[1:]) == "train":
        restart_with_blas_threads_asleep()
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
