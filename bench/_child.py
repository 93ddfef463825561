"""Entry point of a measured subprocess: ``python -m bench._child MODULE:FUNCTION PARAMS OUT``."""

import sys

from bench._measure import child_main

if __name__ == "__main__":
    child_main(sys.argv[1:])
