from paasta_lite.cli.main import main

main()
