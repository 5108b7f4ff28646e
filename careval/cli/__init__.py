"""The command line: the one edge that talks to people in a terminal.

Each command group has its module (``data``, ``run``, ``risk``, ``tables``, ``design``,
``surveys``, ``qualitative``); they parse arguments, call one function of an inner package and
print a line. ``main`` turns known problems into one message and exit code 2.
"""

from careval.cli.app import app, main

__all__ = ["app", "main"]
