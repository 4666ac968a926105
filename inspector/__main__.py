"""`python -m inspector` runs the CLI."""

from inspector.cli.app import main

main()
