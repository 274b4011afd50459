"""`python -m fedflow`: the same command line as the `fedflow` console script."""

from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
