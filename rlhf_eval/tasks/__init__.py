"""Built-in tasks; importing this package registers them."""

from rlhf_eval.tasks import (  # noqa: F401
    drop,
    glue,
    hellaswag,
    quac,
    squad_v2,
    summarization,
    truthfulqa_mc,
    wmt,
    wsc,
)
