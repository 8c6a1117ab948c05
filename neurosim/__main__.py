"""``python -m neurosim``: the command line (the same as the ``neurosim`` script)."""

from .cli import main

if __name__ == "__main__":  # guarded: Dask's spawned workers import this module too
    main(prog_name="neurosim")
