#!/usr/bin/env bash
# Fetch what the paper's runs need (needs internet; never run by the tests or the default demo).
#   ./downloads.sh            everything
#   ./downloads.sh --voc --sbd --models --saliency   only those parts
# Downloads resume (curl -C -), are verified (md5 where the source publishes one; otherwise the
# sha256 of the first download is recorded in data/checksums.recorded and checked on later runs),
# and are unpacked into data/ and models/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p data/downloads models

VOC_URL=http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar
VOC_MD5=6cd6e144f989b92b3379bac3b3de84fd
SBD_URL=https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz
SBD_MD5=82b4d87ceb2ed10f6038a1cba92111cb
VGG_URL=http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel
DEEPLAB_URL=http://liangchiehchen.com/projects/released/deeplab_aspp_vgg16/prototxt_and_model.zip
RELEASE_URL=https://transfer.d2.mpi-inf.mpg.de/joon/joon17cvpr/data.tar.gz   # the authors' saliency maps etc.

die() { echo "downloads.sh: $*" >&2; exit 1; }

fetch() {  # url file [md5]
  local url=$1 file=data/downloads/$2 md5=${3:-}
  echo "== $2"
  curl -fL --retry 3 -C - -o "$file" "$url" || die "could not download $url (offline? the URL moved?); rerun to resume"
  if [ -n "$md5" ]; then
    echo "$md5  $file" | md5sum -c --quiet - || die "$file: md5 mismatch; delete it and rerun"
  else
    local sum; sum=$(sha256sum "$file" | cut -d' ' -f1)
    local rec; rec=$(grep " $2\$" data/checksums.recorded 2>/dev/null | cut -d' ' -f1 || true)
    if [ -z "$rec" ]; then echo "$sum $2" >> data/checksums.recorded; echo "   no published checksum; recorded sha256 $sum"
    elif [ "$rec" != "$sum" ]; then die "$file: sha256 differs from data/checksums.recorded; delete it and rerun"; fi
  fi
}

voc() {
  fetch "$VOC_URL" VOCtrainval_11-May-2012.tar "$VOC_MD5"
  tar -xf data/downloads/VOCtrainval_11-May-2012.tar -C data
}

sbd() {  # SBD labels (.mat) -> SegmentationClassAug PNGs + the train_aug list (train + SBD minus VOC12 val)
  fetch "$SBD_URL" benchmark.tgz "$SBD_MD5"
  tar -xzf data/downloads/benchmark.tgz -C data/downloads
  python3 - <<'PY'
import pathlib
from guidedlabelling.voc import build_train_aug
build_train_aug(pathlib.Path("data/downloads/benchmark_RELEASE/dataset"), pathlib.Path("data/VOCdevkit/VOC2012"))
PY
}

models() {
  fetch "$VGG_URL" VGG_ILSVRC_16_layers.caffemodel
  cp data/downloads/VGG_ILSVRC_16_layers.caffemodel models/
  fetch "$DEEPLAB_URL" deeplab_largefov.zip
  unzip -o -q data/downloads/deeplab_largefov.zip -d data/downloads/deeplab
  cp "$(find data/downloads/deeplab -name '*.caffemodel' | head -1)" models/VGG_ILSVRC_16_layers-deeplab.caffemodel
}

saliency() {
  fetch "$RELEASE_URL" joon17cvpr_data.tar.gz
  tar -xzf data/downloads/joon17cvpr_data.tar.gz -C data/downloads
  echo "   the authors' precomputed saliency maps are under data/downloads/; pass --saliency_dir to generate.py"
}

parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(--voc --sbd --models --saliency)
for p in "${parts[@]}"; do
  case $p in
    --voc) voc ;; --sbd) sbd ;; --models) models ;; --saliency) saliency ;;
    *) die "unknown part $p (use --voc --sbd --models --saliency)" ;;
  esac
done
echo "done"
