"""`python -m lib.sim`: run the simulator until SIGTERM/SIGINT (see lib.sim.server)."""

import sys

from lib.sim.server import main

sys.exit(main())
