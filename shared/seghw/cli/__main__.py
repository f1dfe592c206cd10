import sys

from seghw.cli import main

sys.exit(main())
