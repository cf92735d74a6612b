"""The build's one addition to setup.cfg: the wheel carries the lessons (as tinygan/lessons/), so that
``python -m tinygan course assign`` and ``course grade`` work from an installed package, not only from a checkout.
An editable install leaves them where they are (lessons/ beside the package, found there)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithLessons(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "tinygan" / "lessons"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(Path("lessons").iterdir()):
            if path.suffix in (".py", ".md"):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithLessons})
