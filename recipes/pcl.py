"""Run the ``pcl`` recipe from a clone: ``python recipes/pcl.py --help``.

The recipe itself is installed with the package as ``maxent_components.recipes.pcl``
(``python -m maxent_components.recipes.pcl``); its configs are in ``maxent_components/recipes/conf``.
"""

from maxent_components.recipes.pcl import main

if __name__ == "__main__":
    main()
