"""The labeling web app: one prompt at a time, its outputs blind and shuffled, Likert, flags and
a ranking with ties (InstructGPT's labeling interface, section 3.4 and appendix B)."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.serving import BaseWSGIServer, make_server

from rlhf_eval.errors import RunError
from rlhf_eval.labeling.items import Item, LabelingSet, display_order, load_labeling_set
from rlhf_eval.labeling.store import FLAGS, LIKERT, Label, LabelStore

LABELER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
DEFAULT_PORT = 8750


@dataclass
class Slot:
    """One output as a labeler sees it: a letter, the text, and what they entered so far."""

    letter: str
    text: str
    likert: int | None = None
    flags: tuple[str, ...] = ()
    rank: int | None = None


def create_app(labeling: LabelingSet, store: LabelStore, token: str) -> Flask:
    """The Flask app; every request must carry `token` (in the URL), or it gets 403."""
    app = Flask(__name__)
    items = labeling.items
    position = {item.doc_id: i for i, item in enumerate(items)}

    @app.before_request
    def require_token():
        given = request.args.get("token", "")
        # Constant-time comparison: the token is the only thing between the network and labels.
        if not secrets.compare_digest(given.encode(), token.encode()):
            abort(403)

    @app.after_request
    def private(response):
        # The token is in the URL: keep it out of caches and Referer headers.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def labeler_name() -> str | None:
        name = request.args.get("labeler", "").strip()
        if not name:
            return None
        if not LABELER_NAME.fullmatch(name):
            abort(400, "a labeler name is 1-64 letters, digits or _ . @ -, starting with one")
        return name

    def progress(labeler: str) -> dict:
        done = store.labeled_docs(labeling.task_id, labeler)
        return {
            "done": done,
            "count": sum(item.doc_id in done for item in items),
            "total": len(items),
        }

    def next_unlabeled(done: set[str], after: int = -1) -> Item | None:
        """The first unlabeled item after position `after`, wrapping round to the start."""
        order = items[after + 1 :] + items[: after + 1]
        return next((item for item in order if item.doc_id not in done), None)

    def link(endpoint: str, labeler: str, **args) -> str:
        return url_for(endpoint, labeler=labeler, token=token, **args)

    @app.get("/")
    def start():
        labeler = labeler_name()
        if labeler is None:
            others = [(name, progress(name)["count"]) for name in store.labelers(labeling.task_id)]
            return render_template(
                "start.html", token=token, labelers=others, total=len(items), labeling=labeling
            )
        state = progress(labeler)
        item = next_unlabeled(state["done"])
        if item is None:
            return render_template(
                "done.html", labeler=labeler, progress=state, nav=nav(labeler, state), token=token
            )
        return redirect(link("show", labeler, doc_id=item.doc_id))

    def nav(labeler: str, state: dict, current: str | None = None) -> list[dict]:
        return [
            {
                "number": i + 1,
                "href": link("show", labeler, doc_id=item.doc_id),
                "done": item.doc_id in state["done"],
                "current": item.doc_id == current,
            }
            for i, item in enumerate(items)
        ]

    def page(labeler: str, item: Item, slots: list[Slot], error: str | None = None, status=200):
        state = progress(labeler)
        body = render_template(
            "item.html",
            labeler=labeler,
            item=item,
            number=position[item.doc_id] + 1,
            slots=slots,
            flags=FLAGS,
            likert=LIKERT,
            progress=state,
            nav=nav(labeler, state, item.doc_id),
            action=link("show", labeler, doc_id=item.doc_id),
            error=error,
            task=labeling.task_id,
        )
        return body, status

    def find(doc_id: str) -> tuple[str, Item]:
        labeler = labeler_name()
        if labeler is None:
            abort(400, "add ?labeler=NAME to the URL (your name, so your labels stay yours)")
        item = labeling.item(doc_id)
        if item is None:
            abort(404, f"no prompt {doc_id} in task entry {labeling.task_id}")
        return labeler, item

    @app.get("/item/<doc_id>")
    def show(doc_id: str):
        labeler, item = find(doc_id)
        saved = {x.model: x for x in store.labels(labeling.task_id, labeler) if x.doc_id == doc_id}
        slots = []
        for i, output in enumerate(display_order(labeler, item)):
            label = saved.get(output.model)
            slots.append(
                Slot(_letter(i), output.text)
                if label is None
                else Slot(_letter(i), output.text, label.likert, label.flags, label.rank)
            )
        return page(labeler, item, slots)

    @app.post("/item/<doc_id>")
    def save(doc_id: str):
        labeler, item = find(doc_id)
        outputs = display_order(labeler, item)
        slots, problems = _read_form(outputs)
        if problems:
            return page(labeler, item, slots, "; ".join(problems), status=400)
        store.save(
            [
                Label(
                    labeling.task_id,
                    labeler,
                    item.doc_id,
                    output.model,
                    slot.likert,
                    slot.flags,
                    slot.rank,
                    item.prompt,
                    output.text,
                )
                for output, slot in zip(outputs, slots, strict=True)
            ]
        )
        state = progress(labeler)
        following = next_unlabeled(state["done"], after=position[item.doc_id])
        if following is None:
            return redirect(link("start", labeler))
        return redirect(link("show", labeler, doc_id=following.doc_id))

    return app


def _letter(index: int) -> str:
    return chr(ord("A") + index)


def _read_form(outputs: list) -> tuple[list[Slot], list[str]]:
    """The slots as entered, and what is missing or out of range (the page shows both, so a
    rejected submission loses nothing the labeler typed)."""
    k = len(outputs)
    slots, problems = [], []
    for i, output in enumerate(outputs):
        letter = _letter(i)
        likert = _integer(request.form.get(f"likert_{i}"))
        rank = _integer(request.form.get(f"rank_{i}"))
        flags = tuple(f for f in FLAGS if f in request.form.getlist(f"flags_{i}"))
        if likert not in LIKERT:
            problems.append(f"output {letter}: choose a quality score from 1 to 7")
            likert = None
        if rank is None or not 1 <= rank <= k:
            problems.append(f"output {letter}: give a rank from 1 (best) to {k}")
            rank = None
        slots.append(Slot(letter, output.text, likert, flags, rank))
    return slots, problems


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def make_label_server(
    run_path: Path,
    task: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
) -> tuple[BaseWSGIServer, str]:
    """A threaded HTTP server for a run's labeling app (port 0: any free port) and its URL with
    the access token. Call serve_forever() on it; shutdown() stops it."""
    labeling = load_labeling_set(run_path, task)
    store = LabelStore.for_run(labeling.run_path)
    token = token or secrets.token_urlsafe(24)
    app = create_app(labeling, store, token)
    try:
        if port:
            _check_free(host, port)  # werkzeug would print its own message and exit instead
        server = make_server(host, port, app, threaded=True)
    except (OSError, SystemExit) as error:
        raise RunError(
            f"cannot listen on {host}:{port} ({error}). Fix: pass --port with a free port, or "
            "stop the program using this one."
        ) from error
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.server_port}/?token={token}"


def _check_free(host: str, port: int) -> None:
    """OSError if nothing can listen on host:port (in use, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        probe.bind((host, port))


def serve(
    run_path: Path,
    task: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the labeling app until Ctrl-C; every label is saved as soon as it is submitted."""
    server, url = make_label_server(run_path, task, host, port)
    announce(f"labeling {Path(run_path)}: open {url}&labeler=YOUR_NAME")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"note: listening on {host}: anyone who has this URL can label.")
    announce("Ctrl-C stops the app; labels are saved on every submit.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        announce("stopped.")
    finally:
        server.server_close()
