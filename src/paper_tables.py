#!/usr/bin/env python3
"""The paper's tables from the finished runs under <out_root>/<preset>/, beside the published numbers
(markdown, printed and written to <out_root>/<preset>/paper_tables.md); missing runs show the command
that makes them."""
from guidedlabelling.cli import run

if __name__ == "__main__":
    run("guidedlabelling.tables")
