"""python -m guidedlabelling STAGE [flags]: run one stage of the table in pipeline.py (-h: its flags)."""
import sys

from .cli import run
from .pipeline import BY_NAME

if len(sys.argv) < 2 or sys.argv[1] not in BY_NAME:
    sys.exit(f"usage: python -m guidedlabelling STAGE [flags]; STAGE is one of {', '.join(BY_NAME)}")
run("guidedlabelling.runner", "main", sys.argv[1], sys.argv[2:])
