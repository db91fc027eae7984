"""`python -m rlhf_train` and `accelerate launch -m rlhf_train` run the CLI."""

import sys

from rlhf_train.cli import main

sys.exit(main())
