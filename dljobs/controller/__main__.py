"""`python -m dljobs.controller`: run the controller (what `dljobs server` runs)."""

from dljobs.controller.server import main

if __name__ == "__main__":
    main()
