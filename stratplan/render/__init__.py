"""What the commands print, apart from the commands that print it.

- `text`: lint results for a person (carets, colour on a terminal; plain in a pipe), the
  lint JSON of LANGUAGE.md section 6, and `dumps`, the indented JSON every command writes;
- `github`: lint results as GitHub Actions workflow commands (`lint --format github`);
- `sarif`: lint results as a SARIF 2.1.0 log (`lint --format sarif`, code scanning);
- `run`: the run report as rich tables (`run`, `resume`);
- `backtest`: the backtest report as text, its steps as CSV, its plot as PNG;
- `sweep`: the sweep's ranked table, its CSV, its plot as PNG;
- `html`: the backtest as one interactive, self-contained page; `chart_data`: what the
  backtest's PNG and page draw.

Renderers return text (or write to a rich console) and never read the command line; the
commands (`stratplan.commands`) decide what to print and where. Text from a plan, a
market or a file name goes through `stratplan.terminal.shown` on its way to a terminal.
"""

from typing import Any


def png_bytes(figure: Any, dpi: int) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed either way (pyplot keeps
    every open figure alive)."""
    import io

    import matplotlib.pyplot as plt

    png = io.BytesIO()
    try:
        figure.savefig(png, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return png.getvalue()
