"""`python -m movierec ...`: the CLI, also as torchrun starts it (`torchrun ... -m movierec train ...`)."""

from movierec.cli import main

if __name__ == "__main__":
    main()
