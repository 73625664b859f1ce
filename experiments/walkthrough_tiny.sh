#!/usr/bin/env bash
# The docs/walkthrough.md commands on a stand-in: a randomly initialised timm vit_tiny_patch16_224 saved
# to a weights file (instead of downloaded ViT-B/16 weights) and two embedded domains exported as image
# folders (instead of your source and target datasets). Same code path; prints each command's wall time.
# Usage: [SIZE=200 EPOCHS=2] bash experiments/walkthrough_tiny.sh [WORKDIR]   (default: runs/walkthrough)
set -euo pipefail
WORK=${1:-runs/walkthrough}
mkdir -p "$WORK" && cd "$WORK"
EV="explainvec"
step() { N=$((N + 1)); local start=$SECONDS; echo "+ $*"; "$@" > "log-$N.txt" 2>&1; echo "  $((SECONDS - start)) s"; }
N=0
python - <<'PY'
import timm, torch
from safetensors.torch import save_file
torch.manual_seed(0)
model = timm.create_model("vit_tiny_patch16_224", pretrained=False)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, "vit_tiny_patch16_224.safetensors")
PY
step $EV domains --export geo --to source --size ${SIZE:-200} --img-size 64 --patch-size 16
step $EV domains --export glyphs --to target --size ${SIZE:-200} --img-size 64 --patch-size 16
step $EV import timm:vit_tiny_patch16_224 --weights vit_tiny_patch16_224.safetensors --img-size 64 --out base.safetensors
step $EV train --base base.safetensors --data source --out source-predict.safetensors --epochs ${EPOCHS:-2} --batch-size 32
step $EV train --base base.safetensors --data source --mode explain --value-model source-predict.safetensors \
    --out source-explain.safetensors --epochs ${EPOCHS:-2} --batch-size 32
step $EV vector --explain source-explain.safetensors --predict source-predict.safetensors --out tau.safetensors
step $EV train --base base.safetensors --data target --out target.safetensors --epochs ${EPOCHS:-2} --batch-size 32
step $EV apply --model target.safetensors --vector tau.safetensors --lam auto --data target \
    --out target-explains.safetensors
step $EV explain target/test/diamond target/test/tee --model target-explains.safetensors --out maps
step $EV evaluate --model target-explains.safetensors --data target --masks target/masks/test \
    --reference target.safetensors --vector tau.safetensors --images 32 --reference-budget 256 --out report
grep -h "wrote\|λ\|lambda" log-*.txt | head -20
