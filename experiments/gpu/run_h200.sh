#!/usr/bin/env bash
# Measure a GPU for ttvsim's calibration inside one time budget; each stage's folder is tarred to $OUT.
#
#   OUT=/some/dir bash experiments/gpu/run_h200.sh STAGES [MODELS]
#
# STAGES, comma-separated, run in order:
#   micro        python -m sim.calibrate (all families, fp16)                 -> calib.tar.gz
#   micro_extra  GEMM sweep in bf16; conv sweep with cudnn.benchmark on       -> calib_extra.tar.gz
#   forward      experiments/gpu/validate_forward.py --isolate (MODELS)        -> forward.tar.gz
#   forward_cl   the same for the 2-D conv models with --channels-last         -> forward_cl.tar.gz
#   both         = micro,forward
# Env: TOTAL (s, whole script, default 570), MICRO_BUDGET (s, default 230), FWD_BUDGET (s, default: what
# is left), TAG (suffix for the tar names, e.g. _run2); EXTRA_MICRO / EXTRA_FWD append arguments
# (e.g. "--device cpu" and "--device cpu --smoke" to test this script without a GPU).
# A `.whl/` folder in the repo root (diffusers + importlib_metadata wheels) is installed to
# /tmp/site first, for machines without diffusers and without network.
set -u
T0=$(date +%s)
STAGES=${1:-both}
[ "$STAGES" = both ] && STAGES=micro,forward
MODELS=${2:-sd15_unet,sd15_vae_decoder,dit_xl2,pixart_alpha,modelscope_unet,llama2_7b_decode,cogvideox_2b}
OUT=${OUT:-/tmp/ttvsim-gpu-out}
TOTAL=${TOTAL:-570}
MICRO_BUDGET=${MICRO_BUDGET:-230}
TAG=${TAG:-}
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
{ nvidia-smi; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv; } > "$OUT/nvidia_smi$TAG.txt" 2>&1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'transformers', transformers.__version__)"
python3 -c "import diffusers; print('diffusers', diffusers.__version__)"

# sim/__init__ imports the simulator; if that is broken mid-refactor, run the package on its own.
if python3 -c "import sim.calibrate" 2>/dev/null; then CAL=(python3 -m sim.calibrate); else
  echo "import sim failed; running sim/calibrate as a top-level package"; CAL=(env PYTHONPATH="$PYTHONPATH:$PWD/sim" python3 -m calibrate); fi

forward() {  # forward DIR [extra args...]
  local dir=$1; shift
  local left=$((TOTAL - $(elapsed) - 15))
  [ -n "${FWD_BUDGET:-}" ] && [ "$FWD_BUDGET" -lt "$left" ] && left=$FWD_BUDGET
  echo "== $dir at $(elapsed) s, budget $left s: $*"
  timeout -k 10 $((left + 10)) python3 experiments/gpu/validate_forward.py --out "$W/$dir" --isolate \
      --budget-s "$left" "$@" ${EXTRA_FWD:-} > "$W/${dir}_stdout.txt" 2>&1
  echo "$dir rc=$? at $(elapsed) s"
  cp "$W/${dir}_stdout.txt" "$W/$dir/stdout.txt" 2>/dev/null
  tar czf "$OUT/$dir$TAG.tar.gz" -C "$W" "$dir"
  grep -E "eager|graph|FAILED|busy|skipped|child" "$W/$dir/log.txt" | cut -c1-200 | tail -40
}

for stage in ${STAGES//,/ }; do
  case $stage in
    micro)
      echo "== micro at $(elapsed) s: ${CAL[*]} --out $W/calib --budget-s $MICRO_BUDGET"
      timeout -k 10 $((MICRO_BUDGET + 60)) "${CAL[@]}" --out "$W/calib" --budget-s "$MICRO_BUDGET" ${EXTRA_MICRO:-} \
          > "$W/calib_stdout.txt" 2>&1
      echo "micro rc=$? at $(elapsed) s"
      cp "$W/calib_stdout.txt" "$W/calib/stdout.txt" 2>/dev/null
      tar czf "$OUT/calib$TAG.tar.gz" -C "$W" calib
      grep -E "^\[|FAILED" "$W/calib/log.txt" | tail -12 ;;
    micro_extra)
      echo "== micro_extra at $(elapsed) s"
      timeout -k 10 120 "${CAL[@]}" --out "$W/calib_extra/bf16_gemm" --families gemm --dtype bfloat16 --budget-s 60 \
          ${EXTRA_MICRO:-} > "$W/calib_extra_stdout1.txt" 2>&1
      echo "bf16 gemm rc=$?"
      timeout -k 10 150 "${CAL[@]}" --out "$W/calib_extra/conv_cudnn_benchmark" --families conv --cudnn-benchmark \
          --budget-s 90 ${EXTRA_MICRO:-} > "$W/calib_extra_stdout2.txt" 2>&1
      echo "conv cudnn.benchmark rc=$? at $(elapsed) s"
      cp "$W"/calib_extra_stdout*.txt "$W/calib_extra/" 2>/dev/null
      tar czf "$OUT/calib_extra$TAG.tar.gz" -C "$W" calib_extra
      grep -hE "^  (peak_tflops|max_tflops_any_shape|conv3x3_median_tflops|nchw_transpose_share_median):" "$W"/calib_extra/*/calibration.yaml | cut -c1-120 ;;
    forward) forward forward --models "$MODELS" ;;
    forward_cl) forward forward_cl --models sd15_unet,sd15_vae_decoder --channels-last ;;
    *) echo "unknown stage $stage" ;;
  esac
done
echo "== done at $(elapsed) s"
