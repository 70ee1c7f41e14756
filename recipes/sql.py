"""Run the ``sql`` recipe from a clone: ``python recipes/sql.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.sql``
(``python -m maxent_components.recipes.sql``); its configs are in ``maxent_components/recipes/conf``.
"""

from maxent_components.recipes.sql import main

if __name__ == "__main__":
    main()
