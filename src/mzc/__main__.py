"""`python -m mzc` runs the command line."""
from .cli import main

main()
