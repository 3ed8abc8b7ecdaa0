"""Child processes die with their parent, however the parent goes: a lifeline pipe.

A process that ``promise serve`` starts (the worker, the dispatcher, the sandbox's children)
must not outlive it: after a ``kill -9`` of ``serve`` an orphaned worker would go on, under
PID 1, beside the next server's, old code beside new.

``PR_SET_PDEATHSIG`` is not enough: it fires when the *thread* that forked the child exits,
not the process, and the sandbox's children are started from request threads, which come
and go (the supervisors' threads outlive their children, but one mechanism is easier to
trust than two). A pipe belongs to the process instead: the parent holds the only write end
(``os.pipe`` makes it close-on-exec, so no other child inherits it), the child the read end.
When the parent is gone, by ``exit``, a signal or ``kill -9``, the kernel closes the write end
and the child reads end-of-file. The child then stops as if sent SIGTERM (the worker
finishes its round, see :func:`stop_on_signals`), and exits outright if that takes longer
than its grace period. Nothing is ever written to the pipe.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType


def open_lifeline() -> tuple[int, int]:
    """A new lifeline: ``(read, write)``. Pass ``read`` to the child (``pass_fds``) and close
    it here; keep ``write`` open for as long as the child may live."""
    return os.pipe()


def die_with_parent(read_fd: int, grace: float) -> None:
    """In the child: watch ``read_fd`` (a lifeline's read end, or any pipe whose write end
    only the parent holds) from a daemon thread; at end-of-file, SIGTERM this process, and
    after ``grace`` seconds end it without cleanup."""
    threading.Thread(target=_watch, args=(read_fd, grace), name="lifeline", daemon=True).start()


def _watch(read_fd: int, grace: float) -> None:
    try:
        while os.read(read_fd, 512):  # nothing is written; data is ignored all the same
            pass
    except OSError:  # a closed or broken descriptor says the same: no parent to serve
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(1)


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT, for a loop that finishes its round and
    returns; a second signal ends the process at once (the default action). Call from the
    main thread."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop
