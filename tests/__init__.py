"""The test suite. Imported first in every test process, before any test module or conftest.

scikit-learn's OpenMP runtime reads `OMP_WAIT_POLICY` once, as it loads. The `modelops` command
sets it to PASSIVE before it imports scikit-learn (`cli._configure_environment`), so its idle
threads sleep instead of spinning. Here it is set before this process imports scikit-learn,
so the stages the tests run in process, the warm stages forked from here (tests/warm.py) and
every server and command the tests start run as the command does. Spinning, they took a
fifth more CPU, and half again as much wall time on cores the other tests share.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
