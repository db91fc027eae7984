"""The test process: trusted code only, and the one place where a verdict is decided.

It runs the problem's setup (HumanEval's prompt, for helpers the tests call such as /32's
`poly`), binds the entry point's name to a proxy, then runs the tests. The proxy sends each
call's arguments to the candidate process and takes back only plain data (wire.decode) or an
exception's class name and message, raised here as that builtin class. The verdict goes to the
harness on a pipe that only this process and the harness hold.
"""

from __future__ import annotations

import builtins
import traceback

from . import wire

NOT_REBUILT = frozenset({"StopIteration", "StopAsyncIteration"})
"""Exceptions that steer control flow where they surface: raised by the proxy inside a test's
map() or generator they would end it early, so `all(map(candidate, cases))` would pass."""


class CandidateGone(BaseException):
    """The candidate process closed its channel (it ended) during or before a call. Not an
    Exception, so no `except Exception` in a test can swallow it."""


class CandidateFault(BaseException):
    """The candidate answered outside the protocol: not plain data, a malformed message, or an
    attempt to leave (SystemExit) inside a call."""


class CandidateError(Exception):
    """An exception of the candidate with no builtin class to raise it as."""


class SandboxLimit(BaseException):
    """The tests passed a value of a type the sandbox cannot send: the harness's limit, an
    `error` outcome rather than a failure. Only the tests' own objects can cause it (every
    value the candidate returned encodes again), so a candidate cannot turn its failure into
    an error that drops the problem from the metric."""


def judge(config: dict) -> dict:
    """The verdict: {"status": "passed" | "failed" | "error", "message", ...}."""
    calls, answers = config["calls_fd"], config["answers_fd"]
    try:
        first = wire.receive(answers)
    except EOFError:
        return {"status": "failed", "gone": True, "message": "the candidate ended while loading"}
    except wire.WireError as error:
        return _failed(f"the candidate broke the protocol ({error})")
    if "load_error" in first and type(first["load_error"]) is dict:
        failure = _rebuild(first["load_error"])
        return _failed(_last_line(failure), type(failure).__name__)
    if first != {"ready": True}:
        return _failed("the candidate broke the protocol (no ready message)")
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(config["setup"], "setup.py", "exec"), namespace)  # noqa: S102
    except BaseException as error:  # noqa: BLE001
        return {"status": "error", "message": f"the problem's own code fails: {_last_line(error)}"}
    faults: list[BaseException] = []
    if config["entry_point"]:
        namespace[config["entry_point"]] = _proxy(config["entry_point"], calls, answers, faults)
    try:
        exec(compile(config["tests"], "tests.py", "exec"), namespace)  # noqa: S102
    except BaseException as error:  # noqa: BLE001  (every way out is a failed test)
        faults.append(error)
    # The first fault decides, even where a test's bare `except:` swallowed it.
    for fault in faults[:1]:
        if isinstance(fault, CandidateGone):
            return {"status": "failed", "gone": True, "message": str(fault)}
        if isinstance(fault, SandboxLimit):
            return {"status": "error", "message": str(fault)}
        return _failed(_last_line(fault), type(fault).__name__)
    return _end(calls, answers)


def _end(calls: int, answers: int) -> dict:
    """The candidate must still be there at the end: one that left early never passes."""
    try:
        wire.send(calls, {"end": True})
        ended = wire.receive(answers) == {"ended": True}
    except (OSError, EOFError):
        return {"status": "failed", "gone": True, "message": "the candidate ended before the end"}
    except wire.WireError:
        ended = False
    if not ended:
        return _failed("the candidate broke the protocol at the end of the tests")
    return {"status": "passed"}


def _failed(message: str, error: str = "") -> dict:
    return {"status": "failed", "message": message, "error": error}


def _proxy(name: str, calls: int, answers: int, faults: list[BaseException]):
    """The entry point as the tests see it. Every protocol fault is also recorded in `faults`,
    so no test can catch its way past one."""

    def call(*args, **kwargs):
        try:
            return _call(*args, **kwargs)
        except (CandidateGone, CandidateFault, SandboxLimit) as fault:
            faults.append(fault)
            raise

    def _call(*args, **kwargs):
        # Each argument on its own: what the candidate returned can always be passed back.
        try:
            arguments = {
                "args": [wire.encode(value) for value in args],
                "kwargs": {key: wire.encode(value) for key, value in kwargs.items()},
            }
            wire.send(calls, {"call": arguments})
        except wire.NotPlainData as error:
            message = f"the tests pass {name} a value the sandbox cannot send ({error})"
            raise SandboxLimit(message) from None
        except wire.WireError as error:  # too large or too deep
            message = f"a call to {name} is beyond the sandbox's limits ({error})"
            raise CandidateFault(message) from None
        except OSError:
            raise CandidateGone(f"the candidate ended before a call to {name}") from None
        try:
            reply = wire.receive(answers)
        except (OSError, EOFError):
            raise CandidateGone(f"the candidate ended during a call to {name}") from None
        except wire.WireError as error:
            raise CandidateFault(f"{name} broke the protocol ({error})") from None
        if "value" in reply:
            try:
                return wire.decode(reply["value"])
            except wire.WireError as error:
                raise CandidateFault(f"{name} returned something malformed ({error})") from None
        if type(reply.get("raised")) is dict:
            raise _rebuild(reply["raised"])
        if "unsendable" in reply:
            detail = str(reply["unsendable"])[:200]
            raise CandidateFault(f"{name} returned something that is not plain data ({detail})")
        raise CandidateFault(f"{name} broke the protocol (an unknown answer)")

    call.__name__ = call.__qualname__ = name
    return call


def _rebuild(raised: dict) -> BaseException:
    """The candidate's exception as its builtin class where that is safe, else a stand-in."""
    kind, name, message = (str(raised.get(key, ""))[: wire.MAX_TEXT] for key in wire.DESCRIBED)
    text = f"{name}: {message}" if message else name
    cls = getattr(builtins, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        error: BaseException = CandidateError(text)
    elif not issubclass(cls, Exception):  # SystemExit, KeyboardInterrupt: it tried to leave
        error = CandidateFault(text)
    elif kind in NOT_REBUILT:
        error = CandidateError(text)
    else:
        try:
            error = cls(message)
        except Exception:  # noqa: BLE001  (classes that need more arguments)
            error = CandidateError(text)
    error.candidate_text = text  # the message as the candidate's process wrote it
    return error


def _last_line(error: BaseException) -> str:
    text = getattr(error, "candidate_text", None)
    if text is not None:
        return text
    if isinstance(error, (CandidateGone, CandidateFault, CandidateError, SandboxLimit)):
        return str(error)
    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else type(error).__name__
