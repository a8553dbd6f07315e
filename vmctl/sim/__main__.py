"""``python -m vmctl.sim INSTANCE_DIR``: run one simulated machine (see vmctl.sim.main)."""

import sys

from vmctl.sim.main import main

sys.exit(main())
