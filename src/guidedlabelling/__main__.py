"""python -m guidedlabelling STAGE [flags]: run one stage of the table in pipeline.py (-h: its flags)."""
import sys

from .cli import run
from .pipeline import BY_NAME, STEPS, current_name

USAGE = f"usage: python -m guidedlabelling STAGE [flags]; STAGE is one of {', '.join(BY_NAME)}"
if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
    print(f"{USAGE}\n{__doc__.strip()}")
elif len(sys.argv) < 2:
    print(USAGE, file=sys.stderr)
    sys.exit(2)
elif current_name(sys.argv[1]) not in BY_NAME:
    variant = {step: (stage, settings) for step, stage, settings in STEPS}.get(current_name(sys.argv[1]))
    hint = f" ({sys.argv[1]} is the driver's step of stage {variant[0]} with --set {' --set '.join(variant[1])})" \
        if variant else ""
    print(f"error: unknown stage {sys.argv[1]!r}{hint}; choose one of {', '.join(BY_NAME)}", file=sys.stderr)
    sys.exit(2)
else:
    sys.argv[0] = f"python -m guidedlabelling {sys.argv[1]}"
    run("guidedlabelling.runner", "main", current_name(sys.argv[1]), sys.argv[2:])
