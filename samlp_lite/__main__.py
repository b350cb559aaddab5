import sys

from samlp_lite.cli import main

sys.exit(main())
