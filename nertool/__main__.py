"""``python -m nertool`` runs the CLI (also under ``torchrun -m nertool``)."""

from nertool.cli import main

if __name__ == "__main__":
    main()
