#!/usr/bin/env bash
# The 7x7 headline report (docs/example-report-7x7/): the CLI on the models that
# the earlier study runner (experiments/transfer.py, since replaced by `explainvec study`) cached in
# runs/transfer/ for experiments/transfer/7x7.json (target glyphs, source geo, init-base self-explaining
# source, oracle). Hashes are that runner's cache keys: the script reruns on those files only.
set -e
R=runs/transfer; O=runs/eval7x7; mkdir -p $O
E=.venv/bin/explainvec
$E vector --explain $R/f066bd565d08.safetensors --predict $R/842e064e9867.safetensors --out $O/tau.safetensors
$E apply --model $R/15e3f1368a3f.safetensors --vector $O/tau.safetensors --lam auto --data synthetic:glyphs --out $O/edited.safetensors
$E evaluate --model $O/edited.safetensors --data synthetic:glyphs --reference $R/15e3f1368a3f.safetensors \
  --oracle $R/ac504537abe1.safetensors --vector $O/tau.safetensors --images 32 --reference-budget 1024 --out $O/report
