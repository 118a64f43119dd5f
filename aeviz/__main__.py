"""`python -m aeviz ...` is the `aeviz` command (so that `torchrun -m aeviz train ...` works)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
