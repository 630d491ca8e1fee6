"""The Feast objects of every use case, generated from its spec (``include/use_cases/<name>.yaml``).

``feast apply`` imports every Python file of this folder and registers the Feast objects it finds
as module attributes; this module provides them for every spec in the use-case folder
(``MLLOOP_USE_CASES_DIR``), so a use case is one YAML file. A use case that needs hand-written
objects (an on-demand view, several views) adds ``<name>.py`` here instead; it is checked against
its spec when this module loads (see ``mlloop.feast_definitions``).
"""

from pathlib import Path

from mlloop.feast_definitions import repo_definitions

globals().update(repo_definitions(Path(__file__).resolve().parent))
