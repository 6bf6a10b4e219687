from rocketc.cli import main

main()
