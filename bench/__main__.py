"""`python -m bench [PART ...] [--quick] [--device cuda] [--out DIR] [--render-only]`."""

import sys

from bench._harness import main

sys.exit(main())
