"""Built-in tasks; importing this package registers them."""

from rlhf_eval.tasks import truthfulqa_mc  # noqa: F401
