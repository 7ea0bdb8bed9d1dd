#!/usr/bin/env bash
# usage: research/reduced_audits.sh BIN OUTDIR — reduced audits (JSON per run) of every zoo and validation model and of
# a few flag combinations (cluster rule with --runs 3, --classes, reach, t-SNE, not applicable); used to show that a
# refactoring leaves verdicts and per-class numbers bit-identical (scripts/compare_reports.py OLD NEW).
set -u
mkdir -p "$2"; BIN=$(realpath "$1"); OUT=$(realpath "$2")
: "${ORT_DYLIB_PATH:?set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
R="--seeds-per-class 40 --steps 20 --precondition-images 100 --reducer pca --nc-images 100 --nc-epochs 40 --quiet --format json --threads 1"
for m in fixtures/zoo/*.onnx fixtures/validation/*.onnx; do
  n=$(basename $m .onnx)
  nice -n 10 $BIN $m --data fixtures/mnist-subset $R > $OUT/$n.json 2> $OUT/$n.err; echo $? > $OUT/$n.code
done
# extra paths: the cluster rule with three runs, reach, neural cleanse forced, explicit classes
m=fixtures/zoo/robust_localised.onnx
nice -n 10 $BIN $m --data fixtures/mnist-subset $R --aegis-decision clusters --runs 3 > $OUT/x_clusters_runs3.json 2>$OUT/x1.err; echo $? > $OUT/x_clusters_runs3.code
nice -n 10 $BIN $m --data fixtures/mnist-subset $R --runs 3 --classes 0,3,7,9 > $OUT/x_shortcut_runs3_classes.json 2>$OUT/x2.err; echo $? > $OUT/x_shortcut_runs3_classes.code
nice -n 10 $BIN fixtures/zoo/robust_clean_s0.onnx --data fixtures/mnist-subset $R --method reach --reach-images 20 --reach-sweep-images 10 --reach-eps-sweep 0.5,1,2,4 > $OUT/x_reach.json 2>$OUT/x3.err; echo $? > $OUT/x_reach.code
nice -n 10 $BIN $m --data fixtures/mnist-subset --seeds-per-class 40 --steps 20 --quiet --format json --threads 1 --method aegis --skip-precondition --reducer tsne --classes 1,7,2 > $OUT/x_tsne.json 2>$OUT/x4.err; echo $? > $OUT/x_tsne.code
nice -n 10 $BIN fixtures/zoo/standard_clean.onnx --data fixtures/mnist-subset $R --method aegis > $OUT/x_na.json 2>$OUT/x5.err; echo $? > $OUT/x_na.code
echo done > $OUT/DONE
