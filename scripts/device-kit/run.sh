#!/bin/sh
# The TabZero device kit's runner (scripts/device-kit.ts packs it beside the bundled bench): runs on a Linux
# GPU machine with Vulkan and no Node or network, and prints one JSON object on stdout — the adapter, the
# decode benches (no adapter; LoRA r16 separate and fused) and the LoRA and full training benches at the
# real Qwen2-0.5B shape with random weights. Progress and errors go to stderr.
# TABZERO_KIT_SMOKE=1: a tiny generated model instead of the real shape (to try the kit on lavapipe).
set -u
KIT=$(cd "$(dirname "$0")" && pwd)
NODE="$KIT/bin/node"
CLI="$KIT/main.mjs"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The system's Vulkan loader if it has one (it knows the machine's drivers), else the kit's.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  export LD_LIBRARY_PATH="$KIT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ "${TABZERO_KIT_SMOKE:-0}" = 1 ]; then
  "$NODE" "$CLI" tiny-model --seed 1 --tokenizer bytes --out "$WORK/tiny" >&2 || exit 1
  MODEL="--model $WORK/tiny"
  BATCHES=1,8
  TRAIN="--train 2 --prompt-len 16 --new 8"
  DECODE_LEN="--prompt-len 16 --new 8"
else
  MODEL="--shape qwen2-0.5b --dtype bf16"
  BATCHES=1,8,32,64
  TRAIN="--train 8 --prompt-len 192 --new 64"
  DECODE_LEN="--prompt-len 128 --new 64"
fi
# One bench: its JSON into a file, or an {"error": ...} object when it fails or runs past its time.
bench() {
  name=$1
  limit=$2
  shift 2
  echo "[kit] $name: bench $*" >&2
  if timeout "$limit" "$NODE" "$CLI" bench "$@" --json >"$WORK/$name.json" 2>"$WORK/$name.err"; then
    :
  else
    code=$?
    tail -c 2000 "$WORK/$name.err" >&2
    printf '{"error":"exit %s (124: past %ss)","stderr":%s}' "$code" "$limit" \
      "$("$NODE" -e 'process.stdout.write(JSON.stringify(require("fs").readFileSync(0,"utf8").slice(-2000)))' <"$WORK/$name.err")" \
      >"$WORK/$name.json"
  fi
}
"$NODE" "$CLI" gpu >"$WORK/gpu.json" 2>"$WORK/gpu.err" || printf '{"error":"tabzero gpu failed"}' >"$WORK/gpu.json"
# shellcheck disable=SC2086 # MODEL, TRAIN and DECODE_LEN are word lists
bench decode 90 $MODEL --batch $BATCHES $DECODE_LEN
# shellcheck disable=SC2086
bench decode-lora-separate 75 $MODEL --batch $BATCHES $DECODE_LEN --lora 16 --lora-decode separate --no-kernel-times
# shellcheck disable=SC2086
bench decode-lora-fused 75 $MODEL --batch $BATCHES $DECODE_LEN --lora 16 --lora-decode fused --no-kernel-times
# shellcheck disable=SC2086
bench train-lora 60 $MODEL $TRAIN
"$NODE" -e '
const fs = require("fs");
const [dir, kit] = process.argv.slice(1);
const read = (n) => JSON.parse(fs.readFileSync(`${dir}/${n}.json`, "utf8"));
const out = { kit: JSON.parse(fs.readFileSync(`${kit}/kit.json`, "utf8")), gpu: read("gpu") };
for (const n of ["decode", "decode-lora-separate", "decode-lora-fused", "train-lora"]) out[n] = read(n);
process.stdout.write(JSON.stringify(out) + "\n");
' "$WORK" "$KIT" || exit 1
