from hubserver.server import main

main()
