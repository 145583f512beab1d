"""``python -m jupyter_ucloud.local.supervisor JOB_FOLDER``: supervise one job (see ``daemon``)."""

import sys

from .daemon import main

sys.exit(main())
