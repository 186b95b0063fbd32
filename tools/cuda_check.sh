#!/usr/bin/env bash
# One call on a lent GPU machine: the CUDA tests, then `actlab bench` on CUDA in float32 and bfloat16.
# Usage there: bash tools/cuda_check.sh [STAGE...]  (env tests fp32 bf16 rest variants profile model;
# default: all but variants and profile).
# Each stage has its own time limit, so a slow one cannot eat the others; logs and JSON go to $OUT
# (or /tmp/cuda_check). Wheels for packages missing there (pytorch-optimizer, mnist1d) are read from .whl/.
set -u
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
if ! python3 -c "import pytorch_optimizer, mnist1d" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of the script here
# bfloat16 at float32's bytes (2^27 elements) unless SHAPE is given: at 2^26 its kernels take half float32's
# time, about what the host needs to issue a fused call (~100-300 µs forward+backward, docs/performance.md)
SHAPE_BF16=${SHAPE_BF16:-${SHAPE:-512,64,64,64}}
SHAPE=${SHAPE:-256,64,64,64}  # 2^26 elements: 256 MiB in float32, several times the 50 MiB L2
DEFAULT="relu silu swish(learnable=True) mish gelu smu smu1 tanhsoft erfact serf tanhexp logish eis pau"
STAGES=${*:-env tests fp32 bf16 rest model}

summary() {  # a short table of one bench JSON: act, impl, fwd and fwd+bwd fraction of copy bandwidth, ×silu
    python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("copy GB/s", round(d["roofline"].get("copy_gbs", 0), 1), "| act impl fwd/copy fwdbwd/copy x_silu saved_B")
for r in d["rows"]:
    if r["error"]:
        print(f'{r["act"]:28s} {r["impl"]:8s} ERROR {r["error"][:120]}')
        continue
    x = r["fwdbwd_ms"] / r["silu_ms"]
    print(f'{r["act"]:28s} {r["impl"]:8s} {r["fwd_roofline"]:.2f} {r["fwdbwd_roofline"]:.2f} {x:.2f} '
          f'{r["saved_bytes_per_elem"]:.0f}')
EOF
}

bench() {  # NAME LIMIT_S FLAGS... (SHAPE from the environment)
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" python3 -m actlab.bench --device "$DEVICE" --shape "${BENCH_SHAPE:-$SHAPE}" --repeats small \
        --json "$@" \
        >"$OUT/$name.json" 2>"$OUT/$name.err"
    echo "== bench $name rc=$? in $((SECONDS - start)) s"
    summary "$OUT/$name.json" 2>/dev/null || tail -n 3 "$OUT/$name.err"
}

for stage in $STAGES; do
    case $stage in
    env)
        nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.total --format=csv
        python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
        ;;
    tests)
        start=$SECONDS
        timeout 110 python3 -m pytest tests/test_cuda.py -q -n 8 -p no:cacheprovider >"$OUT/tests.log" 2>&1
        echo "== tests rc=$? in $((SECONDS - start)) s"
        grep -E "passed|failed|error|FAILED|ERROR" "$OUT/tests.log" | tail -25
        ;;
    fp32) bench fp32 130 --dtype float32 --acts $DEFAULT --impls actlab native compiled ;;
    bf16) BENCH_SHAPE=$SHAPE_BF16 bench bf16 150 --dtype bfloat16 --acts $DEFAULT --impls actlab native ;;
    rest)
        rest=$(python3 -c "from actlab.activations import list_acts; import sys
print(' '.join(a for a in list_acts() if a not in sys.argv[1:] + ['identity', 'rrelu']))" $DEFAULT)
        bench rest 90 --dtype float32 --acts $rest --impls actlab native
        ;;
    variants)  # the fused kernels' experiments (fused.ENV_FORMULAS, ENV_DYNAMIC, ENV_ROWS, ENV_ALIGN) on the
        # slow rows; the first is CUDA's default, each other changes one setting
        some="gelu swish(learnable=True) smu erfact logish"
        for v in "reference 1 1 1" "reference 1 1 0" "reference 1 0 1" "fast 1 1 1" "reference 0 1 1"; do
            set -- $v
            ACTLAB_FUSED_FORMULAS=$1 ACTLAB_FUSED_DYNAMIC=$2 ACTLAB_FUSED_ROWS=$3 ACTLAB_FUSED_ALIGN=$4 \
                bench "variant-$1-dynamic$2-rows$3-align$4" 55 --acts $some --impls actlab
        done
        ;;
    profile)  # the kernels one forward+backward launches, and each one's time
        start=$SECONDS
        timeout 90 python3 tools/cuda_profile.py --device "$DEVICE" gelu "swish(learnable=True)" smu \
            >"$OUT/profile.txt" 2>&1
        echo "== profile rc=$? in $((SECONDS - start)) s"
        grep -E "^==|Self CUDA time total|triton_|void at::" "$OUT/profile.txt" | cut -c1-160 | head -40
        ;;
    model)
        start=$SECONDS
        timeout 40 python3 -m actlab.bench --device "$DEVICE" --model cnn4 --repeats small >"$OUT/model.txt" 2>&1
        echo "== model rc=$? in $((SECONDS - start)) s"
        tail -8 "$OUT/model.txt"
        ;;
    *) echo "unknown stage $stage (env tests fp32 bf16 rest variants profile model)" && exit 2 ;;
    esac
done
