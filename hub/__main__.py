"""`python -m hub` runs the CLI (used by tests that spawn and kill real processes)."""

from hub.cli import main

if __name__ == "__main__":
    main()
