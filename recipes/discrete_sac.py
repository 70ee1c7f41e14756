"""Run the ``discrete_sac`` recipe from a clone: ``python recipes/discrete_sac.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.discrete_sac``
(``python -m maxent_components.recipes.discrete_sac``); its configs are in ``maxent_components/recipes/conf``.
"""

from maxent_components.recipes.discrete_sac import main

if __name__ == "__main__":
    main()
