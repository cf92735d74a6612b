"""How long `import tinygan` takes in a fresh interpreter (numpy included), the best of several runs.

    python benchmarks/import_time.py [--runs 7]
"""
import argparse
import subprocess
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters to time (default: %(default)s)")
    args = parser.parse_args()
    code = "import time; t = time.perf_counter(); import tinygan; print(time.perf_counter() - t)"
    times = sorted(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout) for _ in range(args.runs))
    print(f"RESULT import tinygan: best {times[0]:.3f} s, median {times[len(times) // 2]:.3f} s "
          f"over {args.runs} fresh interpreters (bar: 0.5 s)")


if __name__ == "__main__":
    main()
