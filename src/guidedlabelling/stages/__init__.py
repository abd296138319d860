"""One module per stage of pipeline.py's table. Each holds the stage's whole logic:

- OPTIONS: its settings, {key: (the paper's default, help)}, the config section of the stage's name;
- CHECKS: {key: check} of checks.py, the ranges and choices of those settings;
- reads(cfg, given): what it reads with these settings (a reads.Reads; `given`: its folder flags), which the
  preflight checks before anything runs and the fingerprint of its outputs hashes;
- run(stage): the work, given a runner.Stage (settings, output folder, log, inputs of upstream stages);
- add_arguments(parser), optional: flags beyond the settings (folders to read instead of upstream outputs);
- its docstring: the command's description (-h).

Stage modules import the library (datasets, networks, training, inference, ...), never config or runner.
"""
