"""python -m guidedlabelling STAGE [flags]: run one stage of the table in pipeline.py (-h: its flags)."""
import sys

from .pipeline import BY_NAME
from .runner import main

if len(sys.argv) < 2 or sys.argv[1] not in BY_NAME:
    sys.exit(f"usage: python -m guidedlabelling STAGE [flags]; STAGE is one of {', '.join(BY_NAME)}")
main(sys.argv[1], sys.argv[2:])
