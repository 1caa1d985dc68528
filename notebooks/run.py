"""`make notebooks`: each jupytext notebook here executed top to bottom in a fresh kernel
(nbclient) and rendered to HTML with its plots (nbconvert) under build/notebooks/. A cell
that raises fails the target: the notebooks are tested documentation, not screenshots."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "build" / "notebooks"
TIMEOUT_SECONDS = 600


def run(path: Path) -> tuple[int, int, float]:
    notebook = jupytext.read(path)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - started
    html, _ = HTMLExporter().from_notebook_node(notebook)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{path.stem}.html").write_text(html, encoding="utf-8")
    nbformat.write(notebook, OUT / f"{path.stem}.ipynb")
    images = sum(1 for cell in notebook.cells for output in cell.get("outputs", [])
                 if "image/png" in output.get("data", {}))
    return len(notebook.cells), images, seconds


def main() -> None:
    paths = sorted(HERE.glob("[0-9][0-9]_*.py"))
    if not paths:
        sys.exit("no notebooks found")
    for path in paths:
        cells, images, seconds = run(path)
        print(f"{path.name}: {cells} cells, {images} plots, executed in {seconds:.1f} s -> "
              f"build/notebooks/{path.stem}.html")


if __name__ == "__main__":
    main()
