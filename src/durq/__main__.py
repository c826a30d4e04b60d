"""``python -m durq``: the same as the ``durq`` command."""

from durq.cli import main

main()
