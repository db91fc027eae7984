"""The candidate process: run the model's module, then answer calls to its entry point.

Nothing here is trusted: the model's code shares this interpreter and may rewrite any of it.
That is fine, because this process decides nothing. It holds no verdict, no nonce and no tests;
whatever it sends, the test process decodes as plain data and judges by itself.
"""

from __future__ import annotations

from . import wire


def serve(config: dict) -> None:
    """Run the module, say ready (or why not), then answer each call until told to end."""
    calls, answers = config["calls_fd"], config["answers_fd"]
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(config["source"], "candidate.py", "exec"), namespace)  # noqa: S102
        function = _entry_point(namespace, config["entry_point"])
    except BaseException as error:  # noqa: BLE001  (SystemExit too: leaving is not loading)
        wire.send(answers, {"load_error": wire.describe(error)})
        return
    wire.send(answers, {"ready": True})
    while True:
        try:
            message = wire.receive(calls)
        except EOFError:
            return
        if "call" not in message:
            wire.send(answers, {"ended": True})
            return
        answer = _answer(function, message["call"])
        try:
            wire.send(answers, answer)
        except wire.WireError as error:  # too large for one message
            wire.send(answers, {"unsendable": str(error)})


def _entry_point(namespace: dict, name: str):
    if not name:
        return None
    if name not in namespace:
        raise NameError(f"name {name!r} is not defined")
    if not callable(namespace[name]):
        raise TypeError(f"{name!r} is not callable")
    return namespace[name]


def _answer(function, call: dict) -> dict:
    try:
        args = [wire.decode(node) for node in call["args"]]
        kwargs = {str(name): wire.decode(node) for name, node in call["kwargs"].items()}
        value = function(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001  (the tests see it as the candidate's error)
        return {"raised": wire.describe(error)}
    try:
        return {"value": wire.encode(value)}
    except (wire.WireError, RecursionError) as error:
        return {"unsendable": str(error)}
