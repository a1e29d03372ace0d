from mlopsctl.cli import main

main()
