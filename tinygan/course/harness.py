"""The student's side of grading one part: a process that only computes.

    python -m tinygan.course.harness FD LIMITS < request.json       # started by sandbox.py, never by hand

It reads the request (the part, the lesson's text with the student's part in the teacher's code), loads every
module a lesson may use, and then, before a line of the student's runs:

- refuses the library's own implementation of the part (registry.forbidden): each of those functions and methods is
  replaced, wherever it is referred to from, by one that raises RefusedCall and remembers the call, so that no
  spelling of the name (``importlib``, ``getattr``, a helper, a function whose second output is the answer) gets
  through;
- fences itself in with Landlock where the kernel has it (landlock.py): it may read Python's own files and
  write its own empty folder, nothing else, make no TCP connection and signal no process outside the fence;
- installs an audit hook (PEP 578) that refuses new processes, signals, sockets, ctypes, links, writing or
  deleting files outside this process's own folder, and reading the library's or the grader's source files
  (the one guard where there is no Landlock, and the one that says in Python terms what was refused).

Then it runs the part's probe (probes.py) and writes the outputs, arrays in an .npz, to the file descriptor FD,
which the grader reads. The grader decides the grade from those arrays alone; a result the student's code
writes itself can only be arrays the checks still judge. None of this is a container: see lessons/README.md.
"""
import io
import json
import os
import pkgutil
import sys
import traceback

# The grader's modules, never loaded here; the demo and the command line are no lesson's business.
GRADER_ONLY = ("tinygan.course.grade", "tinygan.course.checks", "tinygan.course.answers", "tinygan.course.sandbox",
               "tinygan.course.diagnose", "tinygan.cli", "tinygan.__main__", "tinygan.demo")
BLOCKED_EVENTS = ("os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.startfile",
                  "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn", "os.chdir",
                  "os.chroot", "resource.setrlimit", "resource.prlimit", "gc.get_objects", "gc.get_referrers",
                  "gc.get_referents", "sys.setprofile", "sys.settrace", "socket.", "ctypes.", "_ctypes",
                  "winreg.", "webbrowser.open", "urllib.Request", "ftplib.", "smtplib.", "http.client.",
                  "os.symlink", "os.link", "sqlite3.", "mmap.", "os.fchdir")
UNLOADABLE = ("_posixsubprocess", "ctypes", "_ctypes", "posix", "os", "subprocess", "multiprocessing", "_socket",
              "socket", "gc", "resource", "pty", "signal", "_signal", "sqlite3", "_sqlite3", "mmap")
UNAUDITED = {"os": ("mkfifo", "mknod", "pidfd_open"), "posix": ("mkfifo", "mknod", "pidfd_open"),
             "signal": ("pidfd_send_signal",), "_signal": ("pidfd_send_signal",)}   # no audit event of their own
PATH_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.rename": 2, "os.replace": 2, "os.truncate": 1, "os.chmod": 1,
               "os.chown": 1, "os.utime": 1, "os.mkdir": 1, "shutil.rmtree": 1, "shutil.copyfile": 2,
               "shutil.copytree": 2, "shutil.move": 2, "shutil.make_archive": 1, "os.listdir": 1, "os.scandir": 1}
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class RefusedCall(BaseException):
    """The part called the library's own implementation of itself (a BaseException: ``except Exception`` in the
    student's code does not swallow it, and the call is remembered anyway)."""


def preload():
    """Import every module a lesson may use, so that nothing of tinygan needs to be read once the hook is in."""
    import tinygan
    import tinygan.course.lesson               # noqa: F401  (matplotlib, the lessons' own plumbing)
    for found in pkgutil.walk_packages(tinygan.__path__, "tinygan."):
        if not found.name.startswith(GRADER_ONLY):
            try:
                __import__(found.name)
            except ImportError:                # an optional dependency (torch, cupy) that is not installed
                pass


def refuse(names, refused):
    """Make every function named by ``names`` raise RefusedCall, wherever it is referred to from.

    A name is a module (all it defines, and its submodules), or a module and the start of its attributes'
    names (``tinygan.nn.reference.conv`` refuses conv2d_forward, conv_transpose2d_backward, ...). A function's
    code is swapped in place, so a reference kept elsewhere (a path's set, an alias, a class) is refused too."""
    import types

    def stop(what):
        refused.append(what)
        raise RefusedCall(f"{what} is the library's own implementation of this part")

    def block(function, what):
        cells = [f"v{i}" for i in range(len(function.__code__.co_freevars))]    # the same number of free variables
        source = (f"def outer():\n    {' = '.join(cells + ['None'])}\n" if cells else "def outer():\n") + (
            "    def blocked(*args, **kwargs):\n" + (f"        {', '.join(cells)}\n" if cells else "") +
            f"        __tinygan_refused__({what!r})\n    return blocked\n")
        namespace = {}
        exec(compile(source, what, "exec"), namespace)
        function.__globals__["__tinygan_refused__"] = stop
        function.__code__ = namespace["outer"]().__code__

    def block_all(obj, what):
        if isinstance(obj, types.FunctionType):
            block(obj, what)
        elif isinstance(obj, type):
            for attribute, value in list(vars(obj).items()):
                inner = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
                if isinstance(inner, types.FunctionType):
                    block(inner, f"{what}.{attribute}")

    for name in names:
        modules = {n: m for n, m in list(sys.modules.items()) if n == name or n.startswith((name + ".", name + "_"))}
        module_name, _, start = name.rpartition(".")
        if not modules and module_name in sys.modules:
            modules = {module_name: sys.modules[module_name]}
        else:
            start = ""
        for module in modules.values():
            for attribute, value in list(vars(module).items()):
                defined_here = getattr(value, "__module__", None) == module.__name__
                if attribute.startswith(start) and (defined_here or start):
                    block_all(value, f"{module.__name__}.{attribute}")


def python_folders():
    """The folders of Python's own files: the interpreter's prefixes and where numpy, matplotlib, PIL live."""
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    folders |= {os.path.dirname(os.path.dirname(m.__file__)) for m in
                (sys.modules.get("numpy"), sys.modules.get("matplotlib"), sys.modules.get("PIL")) if m}
    return {os.path.realpath(folder) for folder in folders}


def fence(workdir, private_paths=()):
    """Landlock (landlock.py), where the kernel has it: read Python's folders and the system's libraries, write
    ``workdir``; tinygan's own folder and ``private_paths`` (the teacher's lessons) stay out of reach."""
    import tinygan

    from . import landlock
    readable = python_folders() | {"/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/dev/null",
                                   "/dev/urandom"}
    hidden = [os.path.dirname(tinygan.__file__), *private_paths]
    try:
        return landlock.restrict(sorted(readable), [workdir], hidden)
    except OSError as err:                    # a kernel that refuses the ruleset: the audit hook stands alone
        print(f"tinygan grader: Landlock not in force ({err})", file=sys.stderr)
        return 0


def guard(workdir, private_paths=()):
    """The audit hook: this process may compute, read Python's own files and write in ``workdir``; no more
    (``private_paths``: more folders it may not read, such as the teacher's lessons)."""
    import tinygan
    workdir = os.path.realpath(workdir)
    python = python_folders()
    private = {os.path.realpath(os.path.dirname(tinygan.__file__))}
    private |= {os.path.realpath(path) for path in private_paths}

    def inside(path, roots):
        return any(path == root or path.startswith(root + os.sep) for root in roots)

    def check(path, writing, opening=False):
        if isinstance(path, int) or path is None:
            return
        path = os.fsdecode(path)
        if ".." in path.replace("\\", "/").split("/"):     # with dir_fd a relative path is not the cwd's
            raise PermissionError(f"a graded part may not use '..' in a path ({path})")
        path = os.path.realpath(path)
        if inside(path, {workdir}):
            return
        if writing or inside(path, private) or not inside(path, python) or opening and os.path.isdir(path):
            raise PermissionError(f"a graded part may only {'write' if writing else 'read'} files in its own "
                                  f"folder, not {path}")

    def hook(event, args):
        if event.startswith(BLOCKED_EVENTS):
            raise PermissionError(f"a graded part may not use {event}")
        if event == "open":
            path, mode, flags = args
            check(path, writing=bool(mode and any(c in mode for c in "wax+")) or bool(flags and flags & WRITING),
                  opening=True)
        elif event in PATH_EVENTS:
            for path in args[:PATH_EVENTS[event]]:
                check(path, writing=not event.endswith(("listdir", "scandir")))
        elif event == "import" and args[0] in UNLOADABLE:
            raise PermissionError(f"a graded part may not load {args[0]}")
    sys.addaudithook(hook)
    for module, names in {**UNAUDITED, "_posixsubprocess": ("fork_exec",)}.items():   # calls with no event
        for name in names:
            if hasattr(sys.modules.get(module), name):
                setattr(sys.modules[module], name, refused_call(f"{module}.{name}"))


def refused_call(what):
    def refused(*args, **kwargs):
        raise PermissionError(f"a graded part may not use {what}")
    return refused


def run(request, result_fd):
    import contextlib
    import linecache

    import numpy as np

    from . import probes, registry
    source, filename, part = request["source"], request["filename"], request["part"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)   # lines for tracebacks
    refused = []
    refuse(registry.forbidden(part), refused)
    inputs = probes.inputs(part)
    fence(os.getcwd(), request.get("private", ()))
    guard(os.getcwd(), request.get("private", ()))
    try:
        with contextlib.redirect_stdout(io.StringIO()):                 # a lesson's prints are nobody's business
            outputs = probes.PARTS[part][1](probes.definitions(source, filename), inputs)
    except BaseException as err:                        # the student's error, an exit() or a refused call
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == filename]
        outputs = {"__error__": json.dumps({"type": type(err).__name__, "message": str(err)[:500],
                                            "lines": [f.lineno for f in frames]})}
    if refused:
        outputs = {"__refused__": json.dumps(sorted(set(refused)))}
    result = io.BytesIO()
    np.savez(result, **{name: value if isinstance(value, np.ndarray) else np.array(str(value))
                        for name, value in outputs.items()})
    data = result.getvalue()
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(result_fd, view):]


def limit(memory_mb, cpu_s):
    """This process's limits, set before anything else runs: address space, CPU time, file size, open files, no
    core dumps, and one process (counted over its user: no fork, no thread, where the limit holds)."""
    import resource
    for name, value in (("RLIMIT_AS", memory_mb << 20), ("RLIMIT_CPU", cpu_s), ("RLIMIT_FSIZE", 16 << 20),
                        ("RLIMIT_NOFILE", 64), ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 1)):
        if hasattr(resource, name):
            try:
                resource.setrlimit(getattr(resource, name), (value, value))
            except (ValueError, OSError):     # macOS refuses some (RLIMIT_AS); the others still hold
                pass


def main():
    result_fd = int(sys.argv[1])
    limits = json.loads(sys.argv[2])
    limit(limits["memory_mb"], limits["cpu_s"])
    request = json.loads(sys.stdin.read())
    preload()
    if request.get("ping"):                  # can a part's process start here, and which fence holds?
        answer = json.dumps({"landlock": fence(os.getcwd(), request.get("private", ()))}).encode()
        os.write(result_fd, len(answer).to_bytes(8, "little") + answer)
        return
    run(request, result_fd)


if __name__ == "__main__":
    main()
