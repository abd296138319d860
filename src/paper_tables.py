#!/usr/bin/env python3
"""The paper's tables from the finished runs under <out_root>/<preset>/, beside the published numbers
(markdown, printed and written to <out_root>/<preset>/paper_tables.md); missing runs show the command
that makes them."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # bootstrap: the library lives in src/
from guidedlabelling.tables import main  # noqa: E402

if __name__ == "__main__":
    main()
