"""stratplan: a language, linter and simulated executor for trading-strategy plans."""

__version__ = "0.1.0"
