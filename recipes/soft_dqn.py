"""Run the ``soft_dqn`` recipe from a clone: ``python recipes/soft_dqn.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.soft_dqn``
(``python -m maxent_components.recipes.soft_dqn``); its configs are in ``maxent_components/recipes/conf``.
"""

from maxent_components.recipes.soft_dqn import main

if __name__ == "__main__":
    main()
