"""Stopping a training run between two steps: Ctrl-C (SIGINT) and SIGTERM are recorded, and the loop stops after
the step it is in, with a checkpoint that resumes exactly."""
import contextlib
import signal


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training after a step; a checkpoint was saved."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interrupts_between_steps(say):
    """Make Ctrl-C (SIGINT) and SIGTERM stop training *between* steps.

    A KeyboardInterrupt in the middle of a step could leave D updated and G
    not, and a checkpoint of that state would not resume exactly. Inside this
    block the first signal only records itself, and the loop checks before each
    step; a second one interrupts at once (nothing more is saved then). SIGTERM is
    what job schedulers, `timeout` and container shutdowns send. Yields the check,
    which returns the signal number or None. Outside the main thread no handler
    can be installed (Python delivers signals to the main thread only).
    """
    received = []

    def on_signal(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        say(f"\n{name}: stopping after this step and saving a checkpoint (send it again to stop at once)")

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:                  # not the main thread
        yield lambda: None
        return
    try:
        yield lambda: received[0] if received else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
