"""`python -m paasta_lite` is the `paasta` command."""

from paasta_lite.cli.main import main

main()
