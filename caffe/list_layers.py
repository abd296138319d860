#!/usr/bin/env python3
"""Print the layers with weights of a .caffemodel, one JSON object per line:
{"name": ..., "type": ..., "blobs": [[dims...], ...]}.

With --prototxt, list the layers of that net definition that get weights from the model (Caffe
copies weights by layer name), with the prototxt's layer types; model layers it leaves unused are
named on stderr.
"""
import argparse
import json
import sys

from guidedlabelling.caffemodel import blob_dims, layer_type, net_layers, read_caffemodel, read_prototxt
from guidedlabelling.cli import errors_end_in_one_line, run


def weight_records(caffemodel, prototxt=None):
    """(records, unused): one dict per layer with weights; layer names of the model the prototxt leaves unused."""
    weighted = [layer for layer in net_layers(read_caffemodel(caffemodel)) if len(layer.blobs)]
    by_name = {layer.name: layer for layer in weighted}
    shown = [(layer, layer_type(layer)) for layer in weighted]
    if prototxt:
        shown = [(by_name[p.name], layer_type(p)) for p in net_layers(read_prototxt(prototxt)) if p.name in by_name]
    records = [{"name": layer.name, "type": type_,
                "blobs": [blob_dims(b, f"{caffemodel}: layer {layer.name!r}") for b in layer.blobs]}
               for layer, type_ in shown]
    return records, sorted(set(by_name) - {r["name"] for r in records})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("caffemodel", help="binary Caffe model (V1 `layers` or V2 `layer`)")
    ap.add_argument("--prototxt", help="net definition whose layers to list, with their types")
    args = ap.parse_args(argv)
    with errors_end_in_one_line():  # bad input and a file it cannot read: one line
        records, unused = weight_records(args.caffemodel, args.prototxt)
    for record in records:
        print(json.dumps(record))
    if unused:
        print(f"note: {args.prototxt} does not use these layers of {args.caffemodel}: {', '.join(unused)}",
              file=sys.stderr)


if __name__ == "__main__":
    run("__main__")  # Ctrl-C too
