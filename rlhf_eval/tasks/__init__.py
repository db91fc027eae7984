"""Built-in tasks; importing this package registers them."""

from rlhf_eval.tasks import (  # noqa: F401
    bbh,
    crows_pairs,
    drop,
    glue,
    gsm8k,
    hellaswag,
    humaneval,
    instructions,
    mmlu,
    quac,
    ratings,
    realtoxicity,
    squad_v2,
    summarization,
    truthfulqa_gen,
    truthfulqa_mc,
    win_rate,
    winogender,
    wmt,
    wsc,
)
