"""Landlock (Linux 5.13+): the kernel's own fence around a process, which it sets on itself and cannot take down.

A graded part's process (harness.py) calls ``restrict(readable, writable)`` before any student code runs. From
then on the kernel lets it (and anything it starts) read only below ``readable``, write only below ``writable``,
make no TCP connection, and (ABI 6+, Linux 6.12) send no signal to a process outside its fence. Unlike the audit
hook, this holds for every way of reaching a file: ``dir_fd``, symlinks, FIFOs, C code. Where the kernel has no
Landlock, ``restrict`` returns 0 and the audit hook stands alone.

Plain ctypes on the three system calls (landlock(7)): create a ruleset, add a rule per allowed folder, restrict.
"""
import ctypes
import os
import sys

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446      # the same numbers on x86-64 and arm64
PR_SET_NO_NEW_PRIVS, RULE_PATH_BENEATH = 38, 1
FS = {"execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3, "remove_dir": 1 << 4,
      "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7, "make_reg": 1 << 8, "make_sock": 1 << 9,
      "make_fifo": 1 << 10, "make_block": 1 << 11, "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14,
      "ioctl_dev": 1 << 15}
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}   # the rights each ABI knows
                                                                      # (5+: all above, ioctl_dev included)
READ = FS["execute"] | FS["read_file"] | FS["read_dir"]
NET_TCP = 0b11                                                 # bind and connect (ABI 4+)
SCOPE_SIGNAL_AND_SOCKETS = 0b11                                # abstract unix sockets and signals (ABI 6+)


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi():
    """The Landlock ABI version the kernel offers; 0 where there is none (or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(version, 0)


def restrict(readable, writable, hidden=()):
    """Fence this process in: read below ``readable``, read and write below ``writable``; nothing below
    ``hidden`` (folders inside a readable one: its other entries are allowed one by one). Returns the ABI used,
    or 0 (nothing done) where the kernel has no Landlock."""
    version = abi()
    if version == 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    handled = FS_BY_ABI.get(version, (1 << 16) - 1)
    attr = RulesetAttr(handled, NET_TCP if version >= 4 else 0, SCOPE_SIGNAL_AND_SOCKETS if version >= 6 else 0)
    size = ctypes.sizeof(RulesetAttr) if version >= 6 else 16 if version >= 4 else 8
    ruleset = libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        hidden = [os.path.realpath(h) for h in hidden]
        for path in writable:
            allow(libc, ruleset, path, handled & ~(FS["make_char"] | FS["make_block"]))
        for root in readable:
            for path in uncovered(os.path.realpath(root), hidden):
                allow(libc, ruleset, path, READ & handled)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return version


def uncovered(root, hidden):
    """``root`` if no hidden folder lies below it, else its entries that hold no hidden folder (recursively)."""
    inside = [h for h in hidden if h == root or h.startswith(root + os.sep)]
    if not inside:
        return [root] if os.path.exists(root) else []
    if root in inside or not os.path.isdir(root):
        return []
    return [path for name in sorted(os.listdir(root)) for path in uncovered(os.path.join(root, name), hidden)]


def allow(libc, ruleset, path, access):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:                                    # gone, or a broken link: nothing to allow
        return
    try:
        if not os.path.isdir(path):                    # a file may only have the rights of a file
            access &= FS["execute"] | FS["write_file"] | FS["read_file"] | FS["truncate"] | FS["ioctl_dev"]
        rule = PathBeneathAttr(access, fd)
        if libc.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
