"""OpenAssistant message trees (OASST1/OASST2's flat message table) in and out: the best-ranked
path of each tree as a demonstration, sibling assistant replies with their ranks as K-way rankings.

Rules:
- A row is a message: `message_id`, `parent_id` (null for a tree's root), `role` ("prompter" or
  "assistant", alternating down a tree, a prompter at the root), `text`, and optionally `rank`
  (0 = best among its siblings, null = not ranked) and `deleted`.
- A `parent_id` not in the table, a `message_id` given twice, or parent links that loop are errors
  naming the message and its line. Deleted messages are dropped with all their replies.
- Best path: from the root, take at each level the reply with the lowest rank. Unranked replies
  come after every ranked one, and equal ranks (or no ranks at all) go to the earliest reply in
  the file. The path ends where a message has no replies; a final prompter turn, unanswered, is
  dropped, and a tree whose root has no reply gives no demonstration.
- Rankings: for each prompter message, its ranked assistant replies, in file order, ranks
  renumbered 0, 1, ... with ties kept. Unranked replies are left out; a group with fewer than two
  ranked replies or all of them tied gives no ranking. A group larger than K = 9 keeps its nine
  best-ranked replies (InstructGPT's labelers ranked at most nine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlhf_common.errors import DataError
from rlhf_common.instruction_data.conversations import with_context
from rlhf_common.instruction_data.files import Row, build, field_error, text
from rlhf_common.instruction_data.records import (
    MAX_K,
    Demonstration,
    Message,
    Prompt,
    Ranking,
    as_conversation,
    dense_ranks,
)

_ROLES = {"prompter": "user", "assistant": "assistant"}
_OASST_FIX = (
    "OASST rows have `message_id`, `parent_id` (null at a root), `role` (prompter|assistant), "
    "`text` and optionally `rank`"
)


@dataclass
class Node:
    id: str
    parent_id: str | None
    role: str
    """"user" (OASST's prompter) or "assistant"."""
    text: str
    rank: int | None
    deleted: bool
    row: Row
    position: int
    children: list[Node] = field(default_factory=list)


def build_trees(rows: list[Row]) -> list[Node]:
    """The roots of the message trees, replies linked in file order, deleted branches dropped."""
    nodes: dict[str, Node] = {}
    for position, row in enumerate(rows):
        node = _node(row, position)
        if node.id in nodes:
            raise field_error(
                row,
                "message_id",
                f"{node.id!r} was already given at {nodes[node.id].row.where}",
                "give each message a unique id",
            )
        nodes[node.id] = node
    for node in nodes.values():
        if node.parent_id is not None and node.parent_id not in nodes:
            raise field_error(
                node.row,
                "parent_id",
                f"names {node.parent_id!r}, which is not in the table (message {node.id!r})",
                "keep whole trees when filtering messages (every parent with its replies), or "
                "drop this message and its replies",
            )
    _check_acyclic(nodes)
    roots = []
    for node in nodes.values():  # dict order is file order, so replies stay in file order
        if node.parent_id is None:
            roots.append(node)
        else:
            nodes[node.parent_id].children.append(node)
    for root in roots:
        _check_roles(root)
    return [_without_deleted(root) for root in roots if not root.deleted]


def _node(row: Row, position: int) -> Node:
    message_id = row.data.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise field_error(row, "message_id", "is missing or not text", _OASST_FIX)
    parent_id = row.data.get("parent_id")
    if parent_id is not None and not isinstance(parent_id, str):
        raise field_error(row, "parent_id", "must be a message id or null", _OASST_FIX)
    role = _ROLES.get(row.data.get("role"))
    if role is None:
        raise field_error(row, "role", f"is {row.data.get('role')!r}", _OASST_FIX)
    rank = row.data.get("rank")
    if isinstance(rank, float) and rank.is_integer():
        rank = int(rank)  # Parquet and pandas store a nullable integer column as floats
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 0):
        raise field_error(row, "rank", f"is {rank!r}", "a rank is an integer >= 0 (0 best) or null")
    return Node(
        message_id,
        parent_id or None,
        role,
        text(row, "text", _OASST_FIX),
        rank,
        bool(row.data.get("deleted", False)),
        row,
        position,
    )


def _check_acyclic(nodes: dict[str, Node]) -> None:
    """Follow parent links from every message; a walk that meets itself is a cycle (no root)."""
    done: set[str] = set()
    for start in nodes.values():
        walk: list[str] = []
        on_walk: set[str] = set()
        node: Node | None = start
        while node is not None and node.id not in done:
            if node.id in on_walk:
                loop = walk[walk.index(node.id) :]
                raise DataError(
                    f"{node.row.where}: field `parent_id`: messages {' -> '.join(loop)} -> "
                    f"{node.id} form a cycle, so their tree has no root. Fix: correct their "
                    "parent_id values (a root has parent_id null)."
                )
            walk.append(node.id)
            on_walk.add(node.id)
            node = nodes[node.parent_id] if node.parent_id is not None else None
        done.update(walk)


def _check_roles(root: Node) -> None:
    if root.role != "user":
        raise field_error(
            root.row,
            "role",
            f"is assistant at the root of tree {root.id!r}",
            "a tree starts with a prompter message",
        )
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.role == node.role:
                who = "prompter" if child.role == "user" else "assistant"
                raise field_error(
                    child.row,
                    "role",
                    f"is {who}, like its parent {node.id!r}",
                    "prompter and assistant messages alternate down a tree",
                )
        stack.extend(node.children)


def _without_deleted(node: Node) -> Node:
    node.children = [_without_deleted(c) for c in node.children if not c.deleted]
    return node


def _best(replies: list[Node]) -> Node:
    return min(replies, key=lambda n: (n.rank is None, n.rank or 0, n.position))


def _messages(path: list[Node]) -> tuple[Message, ...]:
    return tuple(Message(n.role, n.text) for n in path)  # type: ignore[arg-type]


# --- Reading --------------------------------------------------------------------------------------


def read_oasst_prompts(rows: list[Row]) -> list[Prompt]:
    """Each tree's first prompter message."""
    return [build(r.row, Prompt, id=r.id, prompt=r.text) for r in build_trees(rows)]


def read_oasst_demonstrations(rows: list[Row]) -> list[Demonstration]:
    out = []
    for root in build_trees(rows):
        path = [root]
        while path[-1].children:
            path.append(_best(path[-1].children))
        while path and path[-1].role == "user":
            path.pop()
        if path:
            out.append(
                build(
                    root.row,
                    Demonstration,
                    prompt=_messages(path[:-1]),
                    completion=path[-1].text,
                    id=root.id,
                )
            )
    return out


def read_oasst_rankings(rows: list[Row], max_k: int = MAX_K) -> list[Ranking]:
    out = []
    for root in build_trees(rows):
        stack: list[list[Node]] = [[root]]
        while stack:
            path = stack.pop()
            node = path[-1]
            if node.role == "user":
                ranking = _ranking(path, max_k)
                if ranking is not None:
                    out.append(ranking)
            stack.extend(path + [child] for child in reversed(node.children))
    return out


def _ranking(path: list[Node], max_k: int) -> Ranking | None:
    ranked = [c for c in path[-1].children if c.rank is not None]
    kept = sorted(
        sorted(ranked, key=lambda c: (c.rank, c.position))[:max_k], key=lambda c: c.position
    )
    ranks = dense_ranks([c.rank for c in kept])
    if len(set(ranks)) < 2:
        return None
    return build(
        path[-1].row,
        Ranking,
        prompt=_messages(path),
        completions=tuple(c.text for c in kept),
        ranks=ranks,
        id=path[-1].id,
    )


# --- Writing --------------------------------------------------------------------------------------


def write_oasst_demonstrations(demos: list[Demonstration]) -> list[dict[str, Any]]:
    """Each demonstration as a one-path tree: root id = the demonstration's id."""
    rows: list[dict[str, Any]] = []
    for i, demo in enumerate(demos):
        turns = with_context(demo).messages
        _check_turns(turns, demo, i)
        root = demo.id or f"demonstration-{i + 1}"
        ids = [root] + [f"{root}.{k}" for k in range(1, len(turns))]
        for k, turn in enumerate(turns):
            rows.append(_row(ids[k], ids[k - 1] if k else None, root, turn, None))
    return rows


def write_oasst_rankings(rankings: list[Ranking]) -> list[dict[str, Any]]:
    """Each ranking as a tree: its prompt turns, then the K replies with their ranks. The last
    prompter message's id is the ranking's id (what reading gives back as Ranking.id)."""
    rows: list[dict[str, Any]] = []
    for i, ranking in enumerate(rankings):
        turns = as_conversation(ranking.prompt)
        _check_turns(turns + (Message("assistant", ""),), ranking, i)
        base = ranking.id or f"ranking-{i + 1}"
        ids = [f"{base}.{k}" for k in range(len(turns) - 1)] + [base]
        for k, turn in enumerate(turns):
            rows.append(_row(ids[k], ids[k - 1] if k else None, ids[0], turn, None))
        for j, (reply, rank) in enumerate(zip(ranking.completions, ranking.ranks, strict=True)):
            rows.append(_row(f"{base}.r{j}", base, ids[0], Message("assistant", reply), rank))
    return rows


def _row(message_id: str, parent_id: str | None, tree: str, turn: Message, rank: int | None):
    return {
        "message_id": message_id,
        "parent_id": parent_id,
        "message_tree_id": tree,
        "role": "prompter" if turn.role == "user" else "assistant",
        "text": turn.content,
        "rank": rank,
    }


def _check_turns(turns: tuple[Message, ...], record: Demonstration | Ranking, index: int) -> None:
    expected = ["user" if k % 2 == 0 else "assistant" for k in range(len(turns))]
    if [t.role for t in turns] != expected:
        raise DataError(
            f"{record.source or f'record {index + 1}'} (id {record.id}): OASST trees alternate "
            "prompter and assistant turns from a prompter, with no system turns; this record's "
            f"turns are {[t.role for t in turns]}. Fix: write it with format='messages'."
        )
