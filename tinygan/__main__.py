"""``python -m tinygan ...``: the command line (see tinygan.cli)."""
import sys

from . import cli
from .nn import cpu


def main():
    """The program: ``train`` first restarts itself with OpenBLAS's idle threads asleep (tinygan.nn.cpu)."""
    if sys.argv[1:2] == ["train"]:
        cpu.restart_with_blas_threads_asleep()
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
