"""GuidedLabelling: Oh et al., CVPR 2017, "Exploiting Saliency for Object Segmentation from Image Level Labels".

pipeline.py is the table of stages; stages/<stage>.py holds each stage's settings and logic; config.py the
presets and overrides; runner.py what every stage command shares. The library the stages use: datasets, tags,
transforms, sampling, networks/, solver, training, inference, seeds, guide_rules, crf, metrics, io.
"""
