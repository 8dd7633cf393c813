from roboscale.cli.main import main

main()
