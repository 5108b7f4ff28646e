"""``python -m careval``: the same as the ``careval`` command."""

from careval.cli import main

if __name__ == "__main__":
    main()
