"""``python -m conveyor`` runs the command line (the same entry point as ``conveyor``)."""

from conveyor._entry import main

main()
