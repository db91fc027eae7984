"""`python -m rlhf_eval ...`, the form `torchrun` and `accelerate launch -m` start."""

import sys

from rlhf_eval.cli import main

sys.exit(main())
