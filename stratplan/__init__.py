"""stratplan: a language, linter and simulated executor for trading-strategy plans."""

# The one place the version is written: pyproject.toml reads it from here
# (`[tool.setuptools.dynamic]`), and every output that names it (`--version`, SARIF logs,
# the sweep cache's key) imports it.
__version__ = "0.1.0"


def version_line() -> str:
    """What `stratplan --version` prints, from the launcher and from argparse alike."""
    return f"stratplan {__version__}"
