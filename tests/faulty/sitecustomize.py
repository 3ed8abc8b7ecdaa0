"""Fault injection for tests/test_quarantine.py, loaded by every Python process started
with this directory on PYTHONPATH (``promise serve`` and the workers it supervises).

``PROMISE_TEST_CRASH="<promise id>@<version>:segfault"`` makes feeding a record to that
promise version's rules dereference a null pointer, exactly as a crash in durable-rules'
C core would kill the worker; ``...:raise`` makes it raise instead; several are separated
by commas. Other promises and versions are untouched.

``PROMISE_TEST_SANDBOX="<draft promise id>:sleep"`` makes a backtest of a draft with that id
sleep for an hour in the sandbox's child (tests/test_sandbox.py: the time limit); ``...:hog``
makes it allocate 1 GiB (the memory limit).

``PROMISE_TEST_STUCK_WORKER=<path>``: once that file exists, the worker's next round hangs
(tests/test_signals.py: a child that does not stop within the grace period).

Without the variables this module does nothing.
"""

import os

_SPEC = os.environ.get("PROMISE_TEST_CRASH")

if _SPEC:
    import ctypes

    from engine.evaluation.runner import Runner

    _FAULTS = dict(item.rsplit(":", 1) for item in _SPEC.split(","))
    _feed = Runner.feed

    def _failing_feed(self, record, fields, seq):  # type: ignore[no-untyped-def]
        how = _FAULTS.get(f"{self.promise.id}@{self.promise.version}")
        if how is not None:
            if how == "segfault":
                ctypes.string_at(0)  # SIGSEGV: nothing in the process can catch it
            raise RuntimeError("injected failure in the rules core")
        return _feed(self, record, fields, seq)

    Runner.feed = _failing_feed

_SANDBOX = os.environ.get("PROMISE_TEST_SANDBOX")

if _SANDBOX:
    import time

    from engine.sandbox import backtest as _backtest_module

    _DRAFTS = dict(item.rsplit(":", 1) for item in _SANDBOX.split(","))
    _backtest = _backtest_module.backtest

    def _faulty_backtest(draft, sessions):  # type: ignore[no-untyped-def]
        (pid,) = draft.promises
        if _DRAFTS.get(pid) == "sleep":
            time.sleep(3600)
        if _DRAFTS.get(pid) == "hog":
            hog = bytearray(1 << 30)  # noqa: F841
        return _backtest(draft, sessions)

    _backtest_module.backtest = _faulty_backtest

_STUCK = os.environ.get("PROMISE_TEST_STUCK_WORKER")

if _STUCK:
    import time
    from pathlib import Path

    from engine.service import PromiseService

    _evaluate = PromiseService.evaluate_pending

    def _stuck_evaluate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(_STUCK).exists():
            time.sleep(3600)  # a signal's handler runs, and the sleep goes on
        return _evaluate(self, *args, **kwargs)

    PromiseService.evaluate_pending = _stuck_evaluate
