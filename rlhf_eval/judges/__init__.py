"""Judge protocols: how a task asks a judge model about an output and reads its verdict."""
