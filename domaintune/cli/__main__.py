"""``python -m domaintune.cli``: the same as the ``domaintune`` command."""

from domaintune.cli import main

main()
