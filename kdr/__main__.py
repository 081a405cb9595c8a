import sys

from kdr.cli import main

sys.exit(main())
