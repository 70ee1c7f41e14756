import sys

from maxent_components.study.main import main

sys.exit(main())
