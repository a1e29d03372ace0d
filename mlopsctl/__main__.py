from mlopsctl.cli.app import main

main()
