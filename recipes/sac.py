"""Run the ``sac`` recipe from a clone: ``python recipes/sac.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.sac``
(``python -m maxent_components.recipes.sac``); its configs are in ``maxent_components/recipes/conf``.
"""

from maxent_components.recipes.sac import main

if __name__ == "__main__":
    main()
