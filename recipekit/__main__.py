import sys

from recipekit.cli import main

sys.exit(main())
