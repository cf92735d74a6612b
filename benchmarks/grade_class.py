"""How long the grader takes for a class: N students, each with every lesson done (the teacher's solutions, a
third of them with one typical mistake planted), graded by ``python -m tinygan course grade`` in a process of
its own, as a teacher runs it. Prints the time, and the time per part. Figures only, never asserted.

    python benchmarks/grade_class.py --students 30
"""
import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinygan.course import grade

MISTAKES = [("08_adam_vs_sgd", "m / (1 - b1 ** t), v / (1 - b2 ** t)", "m, v"),
            ("02_linear_gradcheck", "self.db += G.sum(axis=0)", "self.db += G.mean(axis=0)"),
            ("04_conv_im2col", "dcols.transpose(3, 0, 1, 2, 4, 5)", "dcols.transpose(3, 0, 2, 1, 4, 5)")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    args = parser.parse_args()
    lessons = grade.lesson_files()
    parts = sum(len(grade.parts.parts_of(text)) for text in lessons.values())
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.students):
            folder = Path(tmp) / "class" / f"student{number:02d}"
            folder.mkdir(parents=True)
            mistake = rng.choice(MISTAKES) if number % 3 == 0 else None
            for lesson, text in lessons.items():
                if mistake and mistake[0] == lesson:
                    text = text.replace(mistake[1], mistake[2])
                (folder / f"{lesson}.py").write_text(text)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tinygan", "course", "grade", str(Path(tmp) / "class"), "--csv",
                               str(Path(tmp) / "grades.csv")], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    totals = [line for line in done.stdout.splitlines() if line.startswith("total:")]
    print(f"{args.students} students x {parts} parts = {args.students * parts} parts graded in {seconds:.0f} s "
          f"({seconds / (args.students * parts):.2f} s a part; exit status {done.returncode}; "
          f"{sum(t.startswith(f'total: {sum(p for t2 in lessons.values() for p, _ in grade.parts.parts_of(t2).values())}') for t in totals)} "
          f"of {len(totals)} students with full points)")


if __name__ == "__main__":
    main()
