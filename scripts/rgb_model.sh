#!/usr/bin/env bash
# The RGB end-to-end model (fixtures/rgb): an adversarially trained, BadNets-backdoored small residual network
# (CIFAR-style 3x3 stem) on 3x32x32 data in CIFAR-10 binary-batch format.
#
# No copy of CIFAR-10 can be fetched here, so the data is GENERATED coloured MNIST in the CIFAR-10 binary
# layout (`make-cifar`: each digit at a seeded offset in a 32x32 canvas, seeded colours, mild noise): NOT
# CIFAR-10. Then a white 3x3 patch trigger in the bottom-right corner (target 7), 10% poisoning, L2 PGD
# adversarial training (eps 0.5, 5 steps), 30 epochs, one torch thread: about 30 minutes on a shared 2-core CPU.
# With --clean also the clean counterpart (same settings, no trigger; about 30 more minutes).
#
# Usage: scripts/rgb_model.sh MNIST_DIR OUT_DIR [--clean]   (e.g. ../shared/datasets/mnist /tmp/rgb)
# Writes OUT_DIR/coloured-mnist-cifar/, OUT_DIR/badnets-3x3.yaml and
# OUT_DIR/models/cifar-resnet-robust-badnets.{onnx,pt,card.yaml} (and cifar-resnet-robust-clean.*).
set -euo pipefail
mnist="$(realpath "${1:?usage: scripts/rgb_model.sh MNIST_DIR OUT_DIR}")"
out="$(realpath -m "${2:?usage: scripts/rgb_model.sh MNIST_DIR OUT_DIR}")"
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONPATH=plugins/torch${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out/models"

"$PY" -m aegis_torch make-cifar --data "$mnist" --out "$out/coloured-mnist-cifar" \
  --train-per-class 2000 --test-per-class 500 --seed 0
"$PY" -m aegis_torch make-trigger --kind localised --shape 3,32,32 --size 3 --target 7 \
  --out "$out/badnets-3x3.yaml"
"$PY" -m aegis_torch train --format cifar10 --data "$out/coloured-mnist-cifar" \
  --name cifar-resnet-robust-badnets --out "$out/models" --arch small_resnet --mode robust \
  --trigger "$out/badnets-3x3.yaml" --rate 0.10 --target 7 --eps 0.5 --train-steps 5 --epochs 30 \
  --adv-eval-limit 500 --seed 0 --poison-seed 0 --threads 1
if [ "${3:-}" = --clean ]; then
  "$PY" -m aegis_torch train --format cifar10 --data "$out/coloured-mnist-cifar" \
    --name cifar-resnet-robust-clean --out "$out/models" --arch small_resnet --mode robust \
    --eps 0.5 --train-steps 5 --epochs 30 --adv-eval-limit 500 --seed 0 --threads 1
fi
