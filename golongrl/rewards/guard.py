"""Time caps for reward scoring: a pre-screen for math that would blow up sympy, a SIGALRM
timer for the main thread, and persistent killable worker processes that run a scoring call
under a wall-clock deadline.

Why all three.  math_verify hands the model's text to sympy, and a few characters are enough
to make it compute for minutes: ``9^{9^{9}}`` (a 370-million-digit power), ``(10^{100})!``,
``\\binom{10^9}{10^5}``, ``(x+y+z+1)^{60}``, twenty nested ``\\frac`` or sixty nested
parentheses (the ANTLR parser backtracks).  A SIGALRM timer exists only on the main thread and
interrupts Python code only between bytecodes, not one long C-level big-integer operation; a
thread cannot be killed either, and it holds the GIL while sympy computes.  So:

* :func:`explosive_math` rejects, in microseconds and in-process, text whose numeric sizes or
  nesting are known to explode (thresholds measured with math_verify 0.9: ``100000!`` verifies
  in 0.3 s, ``1000000!`` in 5 s; ``10^{1000000}`` in 0.4 s, ``9^{9^9}`` never);
* :func:`call_with_alarm` caps, on the main thread, math whose numbers :func:`screen_math`
  bounds to :data:`IN_PROCESS_MAX_DIGITS` (so no single C call runs long): a nestable
  ITIMER_REAL timer that leaves a caller's SIGALRM handler and timer as they were;
* :class:`WorkerPool` runs everything else that might be slow (math off the main thread, or
  with big numbers) in a child process that is SIGKILLed at the deadline and replaced by a
  fresh one.  Children are plain subprocesses (not ``multiprocessing``), so they also start
  from daemonic processes such as DataLoader workers, and they never inherit a trainer's
  threads or CUDA state.  The protocol is
  ``multiprocessing.connection`` over a socket pair (POSIX: ``resource``, ``pass_fds``).
  Where no worker can start, callers fall back to scoring in-process.

A child is warm: it imports the scorer and runs a warm-up call before it reports ready, and
startup (1-2 s) is not charged to any request's deadline.  After a kill the replacement starts
at once, so it is usually ready before the next request.  A child also limits its own CPU time
per request (RLIMIT_CPU), so one orphaned by a killed trainer cannot spin forever.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import math
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

try:
    import resource
except ImportError:  # Windows: no worker starts there (no pass_fds), see Worker
    resource = None  # type: ignore[assignment]

_log = logging.getLogger("golongrl.rewards")
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Pre-screen
# ---------------------------------------------------------------------------------------------

#: Deepest bracket nesting (any of ``( [ {``) let through: twenty nested ``\frac`` never parse,
#: ten take 0.5 s.
MAX_NESTING = 12
#: Deepest nesting of round/square brackets alone: parse time grows ~quadratically (12 levels
#: 1.1 s, 20 levels 3.4 s, 60 never).
MAX_PAREN_NESTING = 10
#: Largest exponent (by absolute value) sympy is asked to evaluate, symbolic base or not.
MAX_EXPONENT = 1e7
#: Largest power result, in decimal digits.
MAX_POWER_DIGITS = 2e6
#: Largest factorial argument, and largest factorial/binomial result in decimal digits.
MAX_FACTORIAL = 1e5
MAX_FACTORIAL_DIGITS = 5e5
#: Largest number (decimal digits) math may compute in-process under the SIGALRM timer: one
#: CPython big-integer operation on 10,000 digits (even a quadratic division) takes well
#: under 10 ms, so the timer fires close to its deadline; bigger ones go to a killable worker.
IN_PROCESS_MAX_DIGITS = 1e4

_TOKEN = re.compile(
    r"""
    (?P<num>\d{1,3}(?:(?:,|\\,|\{,\})\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)
  | (?P<pow>\*\*|\^)
  | (?P<fact>!!?)
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<op>[-+*/])
  | (?P<sym>[A-Za-z]+)
  | (?P<sep>\S)
    """,
    re.X,
)
_OPEN_FOR = {")": "(", "]": "[", "}": "{"}
_TIMES = {"\\cdot", "\\times", "\\div", "\\ast"}
_FRAC = {"\\frac", "\\dfrac", "\\tfrac", "\\cfrac"}
_BINOM = {"\\binom", "\\dbinom", "\\tbinom"}
# Sizing commands carry no value: ``\left(`` is just ``(``.
_INVISIBLE = {
    "\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl", "\\bigr", "\\Bigl",
    "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr", "\\displaystyle", "\\boxed",
}


class _Explosive(Exception):
    """Raised inside the pre-screen's parser when a sub-expression would explode."""


def _number_size(text: str) -> float:
    """``|log10 v|`` of a decimal literal (0 for zero and one)."""
    digits = re.sub(r"[^\d.]", "", text)
    whole = digits.partition(".")[0].lstrip("0")
    if len(whole) > 300:
        return float(len(whole))
    value = float(digits)
    return abs(math.log10(value)) if value > 0 else 0.0


class _SizeParser:
    """Bounds the size (``|log10|`` of the value, i.e. decimal digits either way) of every
    numeric sub-expression of LaTeX or plain math and raises :class:`_Explosive` at the first
    power, factorial or binomial over the limits.  ``None`` stands for a symbolic value.

    Tolerant by construction: unknown tokens are skipped, unbalanced brackets end a group, and
    recursion is bounded because :func:`explosive_math` checks nesting first."""

    def __init__(self, text: str) -> None:
        self.tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
        self.tokens = [t for t in self.tokens if not (t[0] == "cmd" and t[1] in _INVISIBLE)]
        self.i = 0
        self.largest = 0.0  # digits of the largest number met, literal or computed

    def _note(self, size: float | None) -> float | None:
        if size is not None and size > self.largest:
            self.largest = size
        return size

    def _peek(self) -> tuple[str | None, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, "")

    def run(self) -> None:
        while self.i < len(self.tokens):
            before = self.i
            self.expression()
            if self.i == before:  # a stray closing bracket or separator
                self.i += 1

    def expression(self) -> float | None:
        """Terms joined by ``+``/``-`` (n terms: at most log10 n more than the largest); a
        separator (``,`` ``=`` ...) makes the group a non-number."""
        terms: list[float | None] = []
        numeric = True
        while True:
            kind, _ = self._peek()
            if kind is None or kind == "close":
                break
            if kind == "sep":
                numeric = False
                self.i += 1
                continue
            if kind == "op" and self._peek()[1] in "+-":
                self.i += 1
                continue
            before = self.i
            terms.append(self.term())
            if self.i == before:
                self.i += 1
        if not numeric or not terms or any(t is None for t in terms):
            return None
        return self._note(max(t for t in terms if t is not None) + math.log10(len(terms)))

    def term(self) -> float | None:
        """Factors joined by ``*``, ``/``, ``\\cdot`` or juxtaposition: sizes add."""
        size: float | None = 0.0
        while True:
            kind, text = self._peek()
            if kind == "op" and text in "*/" or kind == "cmd" and text in _TIMES:
                self.i += 1
                continue
            if kind not in ("num", "sym", "cmd", "open"):
                return size
            factor = self.power()
            size = None if size is None or factor is None else self._note(size + factor)

    def power(self) -> float | None:
        """A primary with its postfix ``!`` and a right-associative chain of ``^``/``**``."""
        chain = [self.postfix()]
        while self._peek()[0] == "pow":
            self.i += 1
            while self._peek()[0] == "op" and self._peek()[1] in "+-":
                self.i += 1  # a sign does not change the size
            chain.append(self.postfix())
        size = chain.pop()
        while chain:
            size = self._pow(chain.pop(), size)
        return size

    def postfix(self) -> float | None:
        size = self.primary()
        while self._peek()[0] == "fact":
            double = self._peek()[1] == "!!"
            self.i += 1
            size = self._factorial(size, double)
        return size

    def primary(self) -> float | None:
        kind, text = self._peek()
        if kind is None:
            return None
        self.i += 1
        if kind == "num":
            return self._note(_number_size(text))
        if kind == "open":
            size = self.expression()
            if self._peek()[0] == "close":
                self.i += 1
            return size
        if kind == "cmd":
            if text in _FRAC:
                a, b = self.argument(), self.argument()
                return None if a is None or b is None else a + b
            if text in _BINOM:
                return self._binomial(self.argument(), self.argument())
            if text == "\\sqrt":
                if self._peek() == ("open", "["):
                    self.i += 1
                    self.expression()
                    if self._peek()[0] == "close":
                        self.i += 1
                    root = 1.0
                else:
                    root = 2.0
                a = self.argument()
                return None if a is None else a / root
        return None  # a letter, \pi, \ln, \text ...: symbolic

    def argument(self) -> float | None:
        """A command argument: a braced group or a single primary."""
        if self._peek() == ("open", "{"):
            self.i += 1
            size = self.expression()
            if self._peek()[0] == "close":
                self.i += 1
            return size
        return self.postfix() if self._peek()[0] is not None else None

    @staticmethod
    def _bound(size: float) -> float:
        return math.inf if size > 300 else 10.0**size

    def _pow(self, base: float | None, exponent: float | None) -> float | None:
        if exponent is None:
            return None
        bound = self._bound(exponent)
        if bound > MAX_EXPONENT:
            raise _Explosive(f"exponent up to {bound:.3g}")
        if base is None:
            return None
        digits = bound * base
        if digits > MAX_POWER_DIGITS:
            raise _Explosive(f"power of ~{digits:.3g} digits")
        self._note(math.log10(bound) if bound > 1 else 0.0)  # the exponent itself
        return self._note(digits)

    def _factorial(self, size: float | None, double: bool) -> float | None:
        if size is None:
            return None
        n = self._bound(size)
        if n > MAX_FACTORIAL:
            raise _Explosive(f"factorial of a number up to {n:.3g}")
        digits = n * math.log10(n + 1) / (2 if double else 1)
        if digits > MAX_FACTORIAL_DIGITS:
            raise _Explosive(f"factorial of ~{digits:.3g} digits")
        return self._note(digits)

    def _binomial(self, n: float | None, k: float | None) -> float | None:
        if n is None or k is None:
            return None
        # C(n, k) <= n^k and <= 2^n
        digits = min(self._bound(k) * n, self._bound(n) * 0.302)
        if digits > MAX_FACTORIAL_DIGITS:
            raise _Explosive(f"binomial of ~{digits:.3g} digits")
        return self._note(digits)


_BRACKETS = re.compile(r"[^()\[\]{}]+")
# Only these can make sympy compute on numbers; text without any is sized by nesting alone.
_GROWTH = re.compile(r"\^|\*\*|!|\\[dt]?binom")


def _nesting(text: str) -> tuple[int, int]:
    """Deepest nesting of all brackets, and of round/square brackets alone (unbalanced
    openings count: the parser sees them too)."""
    depth = paren = deepest = deepest_paren = 0
    for ch in _BRACKETS.sub("", text):
        if ch in "([{":
            depth += 1
            paren += ch != "{"
            deepest = max(deepest, depth)
            deepest_paren = max(deepest_paren, paren)
        else:
            depth = max(0, depth - 1)
            if ch != "}":
                paren = max(0, paren - 1)
    return deepest, deepest_paren


def screen_math(text: str) -> tuple[str | None, float]:
    """Why ``text`` would make math_verify/sympy run past any sensible cap (or ``None``), and
    an upper bound on the decimal digits of the largest number it asks sympy to compute.

    The first is :func:`explosive_math`.  The second tells where the text may be scored: a
    SIGALRM timer interrupts Python code only between bytecodes, so in-process scoring under
    it is safe only while no single big-integer operation (a C call) can run long; over
    :data:`IN_PROCESS_MAX_DIGITS` digits the text goes to a killable worker instead.
    Linear in ``len(text)``; never raises.
    """
    deepest, deepest_paren = _nesting(text)
    if deepest > MAX_NESTING or deepest_paren > MAX_PAREN_NESTING:
        return f"brackets nested {deepest} deep", 0.0
    if not _GROWTH.search(text):
        # Literals and their products only: a 500-character tail holds no big number.
        return None, float(len(text))
    parser = _SizeParser(text)
    try:
        parser.run()
    except _Explosive as exc:
        return str(exc), parser.largest
    except RecursionError:
        return "expression too deep to size", parser.largest
    return None, parser.largest


def explosive_math(text: str) -> str | None:
    """Why ``text`` would make math_verify/sympy run past any sensible cap, or ``None``.

    Rejects nesting deeper than :data:`MAX_NESTING` (:data:`MAX_PAREN_NESTING` for round and
    square brackets), any numeric exponent above :data:`MAX_EXPONENT` in absolute value,
    numeric powers above :data:`MAX_POWER_DIGITS` digits, factorials of numbers above
    :data:`MAX_FACTORIAL` and factorials or binomials above :data:`MAX_FACTORIAL_DIGITS`
    digits.  Sizes are upper bounds, so it errs towards rejecting; no realistic final answer
    comes near the limits.  Linear in ``len(text)``; never raises.
    """
    return screen_math(text)[0]


# ---------------------------------------------------------------------------------------------
# In-process time cap (main thread): SIGALRM
# ---------------------------------------------------------------------------------------------

#: After a deadline passed, the timer fires again this often until the capped call has
#: returned, so code that swallows the first interrupt (a bare ``except:``) is stopped too.
REFIRE_S = 0.05
_HAS_ITIMER = all(hasattr(signal, name) for name in ("setitimer", "SIGALRM", "pthread_sigmask"))


class _AlarmFired(BaseException):
    """Raised by the SIGALRM handler inside the capped call.  A ``BaseException``, so that a
    library's ``except Exception`` (math_verify and sympy have many) cannot swallow it."""

    def __init__(self, entry: _Deadline) -> None:
        super().__init__()
        self.entry = entry


class _Deadline:
    __slots__ = ("at", "done")

    def __init__(self, at: float) -> None:
        self.at, self.done = at, False


class NeedsWorker(BaseException):
    """Raised by :func:`require_worker` where the caller asked work that cannot be capped in
    this thread to move to a killable worker (:func:`escalate_to_worker`)."""


# Main thread only (signal handlers run there and nowhere else), so no lock.
_deadlines: list[_Deadline] = []
_armed = False
_caller_handler: Any = None
_escalation = threading.local()


def alarm_available() -> bool:
    """Whether :func:`call_with_alarm` can cap a call here: on the main thread of a process
    with ``setitimer`` (POSIX), and while SIGALRM is free.  A timer the caller armed (alarm
    or ITIMER_REAL), a handler installed from C, or SIGALRM blocked is never worked around:
    then it is ``False``."""
    if not _HAS_ITIMER or threading.current_thread() is not threading.main_thread():
        return False
    if _deadlines:
        return True
    return (
        signal.getitimer(signal.ITIMER_REAL)[0] == 0
        and signal.getsignal(signal.SIGALRM) is not None
        and signal.SIGALRM not in signal.pthread_sigmask(signal.SIG_BLOCK, ())  # else it never arrives
    )


def _on_alarm(signum: int, frame: Any) -> None:
    now = time.monotonic()
    for entry in _deadlines:  # outermost first: an expired outer deadline wins
        if not entry.done and entry.at <= now:
            raise _AlarmFired(entry)
    _arm()  # early (the deadline it was set for has returned): aim at the next one


def _arm() -> None:
    global _armed, _caller_handler
    pending = [e.at for e in _deadlines if not e.done]
    if not pending:
        if _armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return
    if not _armed:
        _caller_handler = signal.signal(signal.SIGALRM, _on_alarm)
        _armed = True
    signal.setitimer(signal.ITIMER_REAL, max(min(pending) - time.monotonic(), 1e-4), REFIRE_S)


def _release(entry: _Deadline) -> None:
    global _armed
    if entry in _deadlines:  # identity: also drops inner entries an interrupt left behind
        del _deadlines[_deadlines.index(entry):]
    if _deadlines:
        _arm()
    elif _armed:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # A signal that arrived just before the disarm is handled here, by _on_alarm (which
        # finds nothing due), and never reaches the caller's handler restored below.
        _armed = False
        signal.signal(signal.SIGALRM, _caller_handler)


def call_with_alarm(seconds: float, func: Callable[..., T], *args: Any, lazy: bool = False) -> T:
    """``func(*args)``, interrupted by SIGALRM once ``seconds`` have passed.

    Only where :func:`alarm_available`.  Calls nest: the earliest deadline is armed, and one
    that passes interrupts every call inside it and reaches its own caller.  A ``lazy``
    deadline arms no timer itself (two list operations instead of four system calls): it is
    enforced from the first non-lazy call nested inside it on, so code that never reaches one
    runs uncapped.  When the outermost call returns, the timer is disarmed and the caller's
    SIGALRM handler is back.

    A timer interrupts Python code between bytecodes; it cannot stop one long C call (big
    integers, one regex match): :func:`screen_math` keeps those in a killable worker.

    Raises:
        DeadlineExceeded: ``func`` ran past ``seconds``.
        RuntimeError: called off the main thread (see :func:`alarm_available`).
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("call_with_alarm works on the main thread only")
    entry = _Deadline(time.monotonic() + seconds)
    try:
        try:
            _deadlines.append(entry)
            if not lazy:
                _arm()
            return func(*args)
        finally:
            entry.done = True  # from here on the handler never raises for this call
            _release(entry)
    except _AlarmFired as exc:
        if exc.entry is not entry:
            raise  # an enclosing deadline passed: its own call_with_alarm reports it
        raise DeadlineExceeded(f"over {seconds:g} s") from None


class escalate_to_worker:
    """Within this block (in the current thread), :func:`require_worker` raises
    :class:`NeedsWorker`: the caller scores cheaply here and moves samples that reach
    uncappable work to a killable worker."""

    def __enter__(self) -> None:
        _escalation.on = True

    def __exit__(self, *exc: object) -> None:
        _escalation.on = False


def require_worker() -> None:
    """Called before work that may run unbounded where no timer can cap it (sympy off the
    main thread, or on numbers too big for a timer to interrupt): raises :class:`NeedsWorker`
    inside :class:`escalate_to_worker`, else returns (a worker process, or a caller that has
    no worker)."""
    if getattr(_escalation, "on", False):
        raise NeedsWorker


# ---------------------------------------------------------------------------------------------
# Killable workers
# ---------------------------------------------------------------------------------------------

#: How long a new worker may take to import the scorer and warm up (not charged to a request).
STARTUP_TIMEOUT_S = 120.0
#: After a worker failed to start, callers score in-process for this long before retrying.
RETRY_AFTER_S = 60.0
# The child adopts the parent's sys.path (as multiprocessing's spawn does), then serves.
_CHILD_MAIN = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from golongrl.rewards.guard import serve; serve()"
)


class DeadlineExceeded(Exception):
    """The call ran past its deadline (a worker's call: the worker was killed)."""


class WorkerFailed(Exception):
    """The call could not complete: the function raised in the worker, its arguments or
    result did not pickle, or the worker died (the message says which)."""


class WorkerUnavailable(Exception):
    """No worker process can be started here (startup failed or timed out)."""


def _ref(func: Callable[..., Any]) -> tuple[str, str]:
    return func.__module__, func.__qualname__


class Worker:
    """One child process and the parent's end of its socket."""

    def __init__(self, preload: Sequence[str], warmup: tuple[str, str] | None) -> None:
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ)
        # A scoring child needs no BLAS threads; without this numpy starts one per core in each.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, "1")
        argv = [
            json.dumps(sys.path),
            str(child_end.fileno()),
            ",".join(preload),
            ":".join(warmup) if warmup else "",
        ]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD_MAIN, *argv],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        except (OSError, ValueError) as exc:  # ValueError: no pass_fds (Windows)
            parent_end.close()
            raise WorkerUnavailable(f"cannot start a scoring worker: {exc}") from None
        finally:
            child_end.close()
        self.conn = Connection(parent_end.detach())
        self.ready = False
        self.alive = True

    def is_ready(self) -> bool:
        """Whether the child has reported ready (never blocks)."""
        if not self.ready:
            try:
                self.ready = self.conn.poll(0) and self.conn.recv() == "ready"
            except (EOFError, OSError):
                return False
        return self.ready

    def _await_ready(self) -> None:
        try:
            if self.conn.poll(STARTUP_TIMEOUT_S) and self.conn.recv() == "ready":
                self.ready = True
                return
        except (EOFError, OSError):
            pass
        self.kill()
        raise WorkerUnavailable(
            f"a scoring worker did not start within {STARTUP_TIMEOUT_S:.0f} s "
            f"(exit code {self.process.returncode})"
        )

    def await_ready(self) -> None:
        """Block until the child is ready (raises :class:`WorkerUnavailable` if it never is)."""
        if not self.ready:
            self._await_ready()

    def submit(self, func: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> None:
        """Send ``func(*args)`` to the (ready) child; collect it with :meth:`reply`.

        Raises:
            WorkerFailed: the call does not pickle (the worker stays usable), or the child
                died (the worker is killed).
        """
        try:
            request = pickle.dumps((*_ref(func), args, timeout_s), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on a deeply nested gold
            raise WorkerFailed(f"cannot send the call: {type(exc).__name__}: {exc}") from None
        try:
            self.conn.send_bytes(request)
        except OSError as exc:
            self.kill()
            raise WorkerFailed(f"the scoring worker died ({type(exc).__name__})") from None

    def reply(self) -> Any:
        """The submitted call's result, once :attr:`conn` is readable (blocks until then).

        Raises:
            WorkerFailed: the function raised in the child, or the child died.
        """
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerFailed(f"the scoring worker died ({type(exc).__name__})") from None
        if status != "ok":
            raise WorkerFailed(value)
        return value

    def kill(self) -> None:
        self.alive = False
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Up to ``max_workers`` persistent children, each serving one call at a time.

    Thread-safe: concurrent callers each get their own worker and wait for one to free up
    when ``max_workers`` are busy (that wait is not charged to their deadline).  Once a call
    returned, one spare worker is kept idle, and a killed or dead worker is replaced at once,
    so the call after a timeout finds a ready worker instead of waiting 1-2 s for a new one to
    import sympy.  After :func:`os.fork` the child process starts a pool of
    its own and leaves the parent's workers alone.

    Args:
        preload: modules each child imports before it reports ready.
        warmup: a module-level function each child calls once before it reports ready (so
            lazy imports and caches are not charged to the first request).
    """

    def __init__(self, preload: Sequence[str] = (), warmup: Callable[[], Any] | None = None) -> None:
        self._preload = tuple(preload)
        self._warmup = _ref(warmup) if warmup else None
        self._lock = threading.Condition()
        self._pid = os.getpid()
        self._idle: list[Worker] = []
        self._busy = 0
        self._unavailable_until = 0.0
        self._warned = False

    def run(self, func: Callable[..., Any], args: tuple[Any, ...], *, timeout_s: float,
            max_workers: int) -> Any:
        """``func(*args)`` in a worker, blocking, and its result; ``func`` is a module-level
        function, ``args`` and the result pickle.

        Raises:
            DeadlineExceeded: it ran over ``timeout_s`` (the worker is killed and replaced).
            WorkerFailed: see the class.
            WorkerUnavailable: no worker could be started (then score in-process).
        """
        worker = self.acquire(max_workers, block=True)
        assert worker is not None
        try:
            self.started(worker)
            worker.submit(func, args, timeout_s)
            if not worker.conn.poll(timeout_s):
                worker.kill()
                raise DeadlineExceeded(f"over {timeout_s:g} s")
            return worker.reply()
        finally:
            self.release(worker)

    def started(self, worker: Worker) -> None:
        """Wait for ``worker`` to be ready; on failure remember that workers cannot start here
        (for :data:`RETRY_AFTER_S`) and raise :class:`WorkerUnavailable`."""
        try:
            worker.await_ready()
        except WorkerUnavailable as exc:
            self.mark_unavailable(exc)
            raise

    def mark_unavailable(self, exc: WorkerUnavailable) -> None:
        """Remember that workers cannot start here: :meth:`acquire` refuses for
        :data:`RETRY_AFTER_S` (no retry storm); the first time, log why."""
        with self._lock:
            now = time.monotonic()
            if now >= self._unavailable_until:
                self._unavailable_until = now + RETRY_AFTER_S
            if not self._warned:
                self._warned = True
                _log.error("golongrl.rewards: %s; scoring in-process without a time cap "
                           "(retrying every %.0f s)", exc, RETRY_AFTER_S)

    def acquire(self, max_workers: int, *, block: bool, start: bool = True) -> Worker | None:
        """A worker for the caller alone (ready ones first; it may still be starting, see
        :meth:`started`), or ``None`` when ``max_workers`` are busy and not ``block``, or
        when none is idle and not ``start`` (then no new process is started).

        Raises:
            WorkerUnavailable: workers failed to start recently, or cannot be created here.
        """
        max_workers = max(1, max_workers)
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's workers are not ours to use
                self._pid, self._idle, self._busy = os.getpid(), [], 0
            while True:
                if time.monotonic() < self._unavailable_until:
                    raise WorkerUnavailable("scoring workers failed to start recently")
                ready = [w for w in self._idle if w.is_ready()]
                if ready or self._idle:
                    worker = (ready or self._idle)[-1]
                    self._idle.remove(worker)
                    break
                if not start:
                    return None
                if self._busy < max_workers:
                    try:
                        worker = Worker(self._preload, self._warmup)
                    except WorkerUnavailable as exc:
                        self.mark_unavailable(exc)  # the condition's lock is re-entrant
                        raise
                    break
                if not block:
                    return None
                self._lock.wait()
            self._busy += 1
            return worker

    def release(self, worker: Worker) -> None:
        """Hand ``worker`` back (a killed one is replaced by a fresh one)."""
        with self._lock:
            if os.getpid() != self._pid:
                return
            self._busy -= 1
            if worker.alive:
                self._idle.append(worker)
            # A killed worker is replaced, and one spare is kept warming up, while the caller
            # moves on (not during the first startup, which it would only slow down).
            spares = 0 if worker.alive and len(self._idle) > 1 else 1
            while spares and time.monotonic() >= self._unavailable_until:
                spares -= 1
                try:
                    self._idle.append(Worker(self._preload, self._warmup))
                except WorkerUnavailable:
                    break
            self._lock.notify()

    def warm(self, count: int) -> None:
        """Start idle workers until ``count`` are idle, and block until every idle one is
        ready (other callers of this pool wait meanwhile).

        Raises:
            WorkerUnavailable: a worker could not start (see :meth:`mark_unavailable`).
        """
        with self._lock:
            if os.getpid() != self._pid:
                self._pid, self._idle, self._busy = os.getpid(), [], 0
            if time.monotonic() < self._unavailable_until:
                raise WorkerUnavailable("scoring workers failed to start recently")
            try:
                while len(self._idle) < count:
                    self._idle.append(Worker(self._preload, self._warmup))
                for worker in list(self._idle):
                    try:
                        worker.await_ready()
                    except WorkerUnavailable:
                        self._idle.remove(worker)
                        raise
            except WorkerUnavailable as exc:
                self.mark_unavailable(exc)
                raise

    def close(self) -> None:
        """Kill every idle worker (a busy one is killed when its call times out, or stays
        idle afterwards; it is reaped with the process)."""
        with self._lock:
            idle, self._idle = self._idle, []
            if os.getpid() != self._pid:
                return
        for worker in idle:
            worker.kill()


def _limit_cpu(seconds: float) -> None:
    """Let the kernel kill this child if one call burns ``seconds`` (+2) of CPU: the parent
    kills it sooner, unless the parent itself is gone."""
    if resource is None:
        return
    used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + seconds) + 2
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve() -> None:
    """A worker's main loop (``sys.argv``: sys.path, socket fd, preload modules, warm-up)."""
    fd, preload, warmup = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    logging.basicConfig(level=logging.ERROR)  # math_verify logs every timeout as a warning
    if resource is not None:  # an RLIMIT_CPU kill leaves no core file
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    conn = Connection(fd)
    for module in filter(None, preload.split(",")):
        importlib.import_module(module)
    functions: dict[tuple[str, str], Callable[..., Any]] = {}

    def resolve(module: str, name: str) -> Callable[..., Any]:
        if (module, name) not in functions:
            functions[module, name] = getattr(importlib.import_module(module), name)
        return functions[module, name]

    if warmup:
        resolve(*warmup.split(":"))()
    conn.send("ready")
    while True:
        try:
            module, name, args, timeout_s = conn.recv()
        except (EOFError, OSError):
            return
        _limit_cpu(timeout_s)
        try:
            reply = pickle.dumps(("ok", resolve(module, name)(*args)), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which decides
            reply = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        try:
            conn.send_bytes(reply)
        except (EOFError, OSError):
            return


_default_pool: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool(preload: Sequence[str], warmup: Callable[[], Any] | None) -> WorkerPool:
    """The process-wide pool (created on the first call, with that call's settings)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = WorkerPool(preload, warmup)
        return _default_pool


def close_default_pool() -> None:
    """Stop the process-wide pool's idle workers (new ones start on the next call)."""
    with _default_lock:
        if _default_pool is not None:
            _default_pool.close()


atexit.register(close_default_pool)
