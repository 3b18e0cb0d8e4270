"""``python -m recplat``: the same as the ``recplat`` command."""

from recplat.cli import main

main()
