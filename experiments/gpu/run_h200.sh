#!/usr/bin/env bash
# Measure a GPU for ttvsim's calibration: the sim.calibrate microbenchmarks and/or the end-to-end
# forwards of experiments/gpu/validate_forward.py, inside one time budget, results tarred to $OUT.
#
#   OUT=/some/dir bash experiments/gpu/run_h200.sh micro|forward|both [MODELS]
#
# Env: TOTAL (s, whole script, default 570), MICRO_BUDGET (s, default 230); EXTRA_MICRO / EXTRA_FWD
# append arguments (e.g. "--device cpu" and "--device cpu --smoke" to test the script without a GPU).
# A `.whl/` folder in the repo root (diffusers + importlib_metadata wheels) is installed to
# /tmp/site first, for machines without diffusers and without network.
set -u
T0=$(date +%s)
STAGES=${1:-both}
MODELS=${2:-sd15_unet,sd15_vae_decoder,dit_xl2,pixart_alpha,modelscope_unet,llama2_7b_decode,cogvideox_2b}
OUT=${OUT:-/tmp/ttvsim-gpu-out}
TOTAL=${TOTAL:-570}
MICRO_BUDGET=${MICRO_BUDGET:-230}
W=/tmp/ttvsim-gpu-work
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1
elapsed() { echo $(( $(date +%s) - T0 )); }

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv; } > "$OUT/nvidia_smi.txt" 2>&1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'transformers', transformers.__version__)"
python3 -c "import diffusers; print('diffusers', diffusers.__version__)"

# sim/__init__ imports the simulator; if that is broken mid-refactor, run the package on its own.
if python3 -c "import sim.calibrate" 2>/dev/null; then CAL=(python3 -m sim.calibrate); else
  echo "import sim failed; running sim/calibrate as a top-level package"; CAL=(env PYTHONPATH="$PYTHONPATH:$PWD/sim" python3 -m calibrate); fi

if [ "$STAGES" = micro ] || [ "$STAGES" = both ]; then
  echo "== micro at $(elapsed) s: ${CAL[*]} --out $W/calib --budget-s $MICRO_BUDGET"
  timeout -k 10 $((MICRO_BUDGET + 60)) "${CAL[@]}" --out "$W/calib" --budget-s "$MICRO_BUDGET" ${EXTRA_MICRO:-} > "$W/calib_stdout.txt" 2>&1
  echo "micro rc=$? at $(elapsed) s"
  cp "$W/calib_stdout.txt" "$W/calib/stdout.txt" 2>/dev/null
  tar czf "$OUT/calib.tar.gz" -C "$W" calib
  grep -E "^\[|FAILED" "$W/calib/log.txt" | grep -v "^Traceback" | tail -25
fi

if [ "$STAGES" = forward ] || [ "$STAGES" = both ]; then
  LEFT=$((TOTAL - $(elapsed) - 15))
  echo "== forward at $(elapsed) s, budget $LEFT s: $MODELS"
  timeout -k 10 $((LEFT + 10)) python3 experiments/gpu/validate_forward.py --out "$W/forward" --isolate \
      --budget-s "$LEFT" --models "$MODELS" ${EXTRA_FWD:-} > "$W/forward_stdout.txt" 2>&1
  echo "forward rc=$? at $(elapsed) s"
  cp "$W/forward_stdout.txt" "$W/forward/stdout.txt" 2>/dev/null
  tar czf "$OUT/forward.tar.gz" -C "$W" forward
  grep -E "eager|graph|FAILED|busy|skipped|child" "$W/forward/log.txt" | cut -c1-220 | tail -60
fi
echo "== done at $(elapsed) s"
