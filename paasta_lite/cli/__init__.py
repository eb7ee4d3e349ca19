"""The `paasta` command line: thin click commands over the core."""
