"""Run the ``soft_q_iteration`` recipe from a clone: ``python recipes/soft_q_iteration.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.soft_q_iteration``
(``python -m maxent_components.recipes.soft_q_iteration``); its configs are in ``.../recipes/conf``.
"""

from maxent_components.recipes.soft_q_iteration import main

if __name__ == "__main__":
    main()
