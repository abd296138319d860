#!/usr/bin/env bash
# Fetch what the paper's runs need (needs internet; never run by the tests' default paths or the demo).
#   ./downloads.sh                 everything: --voc --sbd --models --saliency-data
#   ./downloads.sh --voc --sbd     only those parts
# Downloads resume (curl -C -; from scratch where the server cannot; a whole one is kept) and are verified: md5
# where the source publishes one; otherwise the sha256 of the first download that unpacks (or converts) is recorded in
# $DATA/checksums.recorded and checked on later runs. Then they are unpacked and converted into the layouts the
# stages read (once: a rerun unpacks an archive again only where it was downloaded again or stopped midway):
#   --voc            $DATA/VOCdevkit/VOC2012 (JPEGImages, SegmentationClass, ImageSets, Annotations)
#   --sbd            SBD's labels -> VOC2012/SegmentationClassAug + ImageSets/Segmentation/train_aug.txt
#   --models         $MODELS/VGG_ILSVRC_16_layers.caffemodel, and from it DeepLab-LargeFOV's init
#                    $MODELS/VGG_ILSVRC_16_layers-deeplab.caffemodel (fc6/fc7 decimated; caffe/convert.py
#                    deeplab-init). A -deeplab file already there (the authors') is kept.
#   --saliency-data  MSRA-B and DUTS-TR -> $DATA/saliency/MSRA-B and $DATA/saliency/DUTS-TR (images/ + masks/)
# Dead links, not fetched: the release's own data (transfer.d2.mpi-inf.mpg.de/joon/joon17cvpr/: its precomputed
# saliency maps and inits; reported dead in the release's issue #2) and DeepLab-v2's prototxt_and_model.zip
# (another network than DeepLab-LargeFOV). Every URL, checksum and folder can be overridden by the environment
# variable of its name (the tests point them at local fixture archives).
set -euo pipefail
SELF=$(readlink -f "$0")
DATA=$(realpath -m "${DATA:-$(dirname "$SELF")/data}")        # a folder you name: from where you run this
MODELS=$(realpath -m "${MODELS:-$(dirname "$SELF")/models}")
cd "$(dirname "$SELF")"
PYTHON=${PYTHON:-python3}
VOC_URL=${VOC_URL:-http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar}
VOC_MD5=${VOC_MD5:-6cd6e144f989b92b3379bac3b3de84fd}
SBD_URL=${SBD_URL:-https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz}
SBD_MD5=${SBD_MD5:-82b4d87ceb2ed10f6038a1cba92111cb}
VGG_URL=${VGG_URL:-http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel}
MSRAB_URL=${MSRAB_URL:-http://mftp.mmcheng.net/Data/MSRA-B.zip}
DUTS_URL=${DUTS_URL:-http://saliencydetection.net/duts/download/DUTS-TR.zip}
die() { echo "downloads.sh: $*" >&2; exit 1; }
RECORDED=$DATA/checksums.recorded
PENDING=  # "sha256 name" of the last download that has no checksum yet: recorded once it unpacks (confirm)

fetch() {  # url file [md5]
  local url=$1 file=$DATA/downloads/$2 md5=${3:-} rc=0 code
  echo "== $2"
  code=$(curl -fL --retry 3 -C - -w '%{http_code}' -o "$file" "$url") || rc=$?
  if [ "$rc" -eq 22 ] && [ "$code" = 416 ] && [ -s "$file" ]; then  # no byte left to resume: it came whole before
    echo "   downloaded already (curl's 416 above: nothing after its last byte)"; rc=0
  fi
  if [ "$rc" -eq 33 ]; then  # the server cannot resume the partial file: download it whole
    echo "   the server cannot resume $file; downloading it again"
    rm -f "$file"; rc=0; curl -fL --retry 3 -o "$file" "$url" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    [ -s "$file" ] || rm -f "$file"  # nothing came: no partial file to resume or delete
    die "could not download $url (curl error $rc: offline? the URL moved?); $([ -f "$file" ] && echo "rerun to resume, or delete $file to start it again" || echo "rerun")"
  fi
  PENDING=
  if [ -n "$md5" ]; then
    local got; got=$(md5sum < "$file" | cut -d' ' -f1)  # (not md5sum -c, whose FAILED/WARNING lines came
    # before ours; from stdin, as a name holding \ makes md5sum escape the sum it prints)
    [ "$got" = "$md5" ] || die "$file: md5 $got, not the published $md5; delete it and rerun"
  else
    local sum; sum=$(sha256sum < "$file" | cut -d' ' -f1)  # (from stdin: a name holding \ escapes the sum)
    local rec; rec=$(grep " $2\$" "$RECORDED" 2>/dev/null | cut -d' ' -f1 || true)
    if [ -z "$rec" ]; then PENDING="$sum $2"
    elif [ "$rec" != "$sum" ]; then
      die "$file: sha256 $sum, not the $rec recorded for it in $RECORDED; delete $file and rerun (or, if the recorded one came from a bad download, delete its line '$rec $2')"
    fi
  fi
}

confirm() {  # record the checksum of the download that just unpacked or converted, if it had none
  if [ -n "$PENDING" ]; then
    echo "$PENDING" >> "$RECORDED"; echo "   no published checksum; recorded sha256 ${PENDING%% *}"; PENDING=
  fi
}

unpacked() {  # archive folder: whether the archive was unpacked whole since it was downloaded, and folder is there
  local marker=$DATA/downloads/.$1.unpacked
  [ "$marker" -nt "$DATA/downloads/$1" ] && [ -d "$2" ] || return 1
  echo "   unpacked already (delete $marker to unpack it again)"
}
unpacked_whole() { touch "$DATA/downloads/.$1.unpacked"; }  # archive: unpacked and converted (not stopped midway)

voc() {
  fetch "$VOC_URL" VOCtrainval_11-May-2012.tar "$VOC_MD5"
  unpacked VOCtrainval_11-May-2012.tar "$DATA/VOCdevkit/VOC2012/JPEGImages" && return
  tar -xf "$DATA/downloads/VOCtrainval_11-May-2012.tar" -C "$DATA" ||
    die "$DATA/downloads/VOCtrainval_11-May-2012.tar: does not unpack; delete it and rerun"
  [ -d "$DATA/VOCdevkit/VOC2012/JPEGImages" ] ||
    die "$DATA/downloads/VOCtrainval_11-May-2012.tar: holds no VOCdevkit/VOC2012/JPEGImages (another archive?); check VOC_URL, delete it and rerun"
  unpacked_whole VOCtrainval_11-May-2012.tar
}

sbd() {  # SBD labels (.mat) -> SegmentationClassAug PNGs + the train_aug list (train + SBD minus VOC12 val)
  fetch "$SBD_URL" benchmark.tgz "$SBD_MD5"
  if ! unpacked benchmark.tgz "$DATA/downloads/benchmark_RELEASE/dataset"; then
    tar -xzf "$DATA/downloads/benchmark.tgz" -C "$DATA/downloads" ||
      die "$DATA/downloads/benchmark.tgz: does not unpack; delete it and rerun"
    unpacked_whole benchmark.tgz
  fi  # (the PNGs made before are kept, but where their label has another time than the one they were stamped with: datasets/sbd.py)
  "$PYTHON" -m guidedlabelling.datasets.sbd "$DATA/downloads/benchmark_RELEASE/dataset" "$DATA/VOCdevkit/VOC2012"
}

models() {
  local vgg=$DATA/downloads/VGG_ILSVRC_16_layers.caffemodel
  fetch "$VGG_URL" VGG_ILSVRC_16_layers.caffemodel
  "$PYTHON" caffe/list_layers.py "$vgg" > /dev/null || die "$vgg: not a Caffe model (an error page?); delete it and rerun"
  confirm
  cp "$vgg" "$MODELS/"
  if [ -f "$MODELS/VGG_ILSVRC_16_layers-deeplab.caffemodel" ]; then
    echo "   keeping $MODELS/VGG_ILSVRC_16_layers-deeplab.caffemodel"
  else
    "$PYTHON" caffe/convert.py deeplab-init "$MODELS/VGG_ILSVRC_16_layers.caffemodel" \
      "$MODELS/VGG_ILSVRC_16_layers-deeplab.caffemodel"
  fi
}

saliency_data() {  # the paper's saliency training set (MSRA-B) and a larger one (DUTS-TR), as images/ + masks/
  local name url
  for name in MSRA-B DUTS-TR; do
    url=$MSRAB_URL; [ "$name" = DUTS-TR ] && url=$DUTS_URL
    fetch "$url" "$name.zip"
    unpacked "$name.zip" "$DATA/saliency/$name" && continue
    "$PYTHON" -c 'import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)' \
      "$DATA/downloads/$name.zip" > /dev/null 2>&1 ||
      die "$DATA/downloads/$name.zip: not a whole zip archive (an error page?); delete it and rerun"
    rm -rf "$DATA/downloads/$name" && mkdir -p "$DATA/downloads/$name"
    "$PYTHON" -m zipfile -e "$DATA/downloads/$name.zip" "$DATA/downloads/$name"
    "$PYTHON" -m guidedlabelling.datasets.saliency_sets "$DATA/downloads/$name" "$DATA/saliency/$name"
    confirm
    rm -rf "$DATA/downloads/$name"  # (arranged into $DATA/saliency/$name; the zip stays for the checksum)
    unpacked_whole "$name.zip"
  done
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; }  # the header above
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(--voc --sbd --models --saliency-data)
for p in "${parts[@]}"; do  # every part checked before anything is fetched
  case $p in
    --voc|--sbd|--models|--saliency-data) ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown part $p (use --voc --sbd --models --saliency-data; --help)" ;;
  esac
done
if [[ " ${parts[*]} " == *" --sbd "* && " ${parts[*]} " != *" --voc "* &&
      ! -f $DATA/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt ]]; then
  die "--sbd needs VOC 2012 first: run ./downloads.sh --voc --sbd"
fi
mkdir -p "$DATA/downloads" "$MODELS"
for p in --voc --sbd --models --saliency-data; do  # in this order whatever the order given (--sbd reads VOC)
  [[ " ${parts[*]} " == *" $p "* ]] || continue
  case $p in
    --voc) voc ;; --sbd) sbd ;; --models) models ;; --saliency-data) saliency_data ;;
  esac
done
echo "done"
