from krfeed.cli import main

main()
