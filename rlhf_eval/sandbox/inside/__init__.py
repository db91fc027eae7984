"""Code that runs inside the sandbox, from a read-only copy imported as the package `inside`.

Standard library only, and relative imports only: the sandbox sees none of the project, so
these files are copied next to nothing else and run there (rlhf_eval.sandbox.launch).
"""
