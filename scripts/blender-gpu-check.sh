#!/usr/bin/env bash
# Blender GPU check for a render node with an NVIDIA GPU (run from anywhere in the repository):
#
#   scripts/blender-gpu-check.sh
#   BLENDER_PATH=/opt/blender-4.2/blender GPU_CHECK_OUT=/tmp/gpu-check scripts/blender-gpu-check.sh
#
# Renders frames of the sample 3D title (templates/demo/title-3d/scene.py, bound by Montage's own
# src/engines/blender/python/montage_scene.py) at 640×360 with the engine's exact argument order
# (blenderRenderArgs: the `-a` call of BLENDER_KEEP_ALIVE_MS=0; a kept Blender sets up its device
# with the same script), once on the CPU as a reference and once per GPU device type (CUDA, OPTIX). For each it reports
# Blender's exit code, the `MONTAGE_DEVICE` line (the device Cycles really used: Blender would
# otherwise fall back to the CPU without saying so), the frames saved, the time, and the GPU
# render against the CPU one (speed, SSIM of the frames). Then it encodes the frames with
# ffmpeg's h264_nvenc and probes the result. It ends with a summary and exits 0 only when at
# least one GPU device rendered every frame on that device (1: none did; 2: no Blender, after
# reporting nvidia-smi and NVENC on a test pattern).
#
# Settings (environment): BLENDER_PATH (blender), FFMPEG_PATH (ffmpeg), FFPROBE_PATH (ffprobe),
# GPU_CHECK_FRAMES (12), GPU_CHECK_TIMEOUT (300 s per Blender run), GPU_CHECK_DEVICES
# ("CUDA OPTIX"; HIP for AMD), GPU_CHECK_OUT (a folder to keep frames, logs and summary.txt in;
# default a temporary folder, removed at the end unless GPU_CHECK_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."

BLENDER=${BLENDER_PATH:-blender}
FFMPEG=${FFMPEG_PATH:-ffmpeg}
FFPROBE=${FFPROBE_PATH:-ffprobe}
FRAMES=${GPU_CHECK_FRAMES:-12}
LIMIT=${GPU_CHECK_TIMEOUT:-300}
read -r -a DEVICES <<<"${GPU_CHECK_DEVICES:-CUDA OPTIX}"
SCENE=templates/demo/title-3d/scene.py
SCRIPT=src/engines/blender/python/montage_scene.py
WIDTH=640 HEIGHT=360 FPS=24 SAMPLES=16

if [ -n "${GPU_CHECK_OUT:-}" ]; then
  WORK=$GPU_CHECK_OUT
  mkdir -p "$WORK"
  KEEP=1
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/montage-gpu-check.XXXXXX")
  KEEP=${GPU_CHECK_KEEP:-0}
fi
WORK=$(cd "$WORK" && pwd)

CHILD=
cleanup() {
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; fi
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# Children never outlive this script: a time limit on each, and (where util-linux has it) the
# kernel's parent-death signal, as Montage starts Blender and ffmpeg.
TIED=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig KILL -- true 2>/dev/null; then TIED=(setpriv --pdeathsig KILL --); fi

# Runs a command under the time limit, its output in a log; returns its exit code (124: timed out).
limited() {
  local log=$1 seconds=$2
  shift 2
  timeout -k 10 "$seconds" ${TIED[@]+"${TIED[@]}"} "$@" >"$log" 2>&1 &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  return "$rc"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The job the engine passes after `--` (blenderJob): settings and one text binding, data only.
job_json() {
  printf '{"mode":"render","settings":{"engine":"CYCLES","samples":%d,"device":"%s","denoise":false,"transparent":false,"frameStart":1,"camera":"Camera","width":%d,"height":%d,"fps":%d},"bindings":[{"type":"text","object":"Title","body":"GPU check"}]}' \
    "$SAMPLES" "$1" "$WIDTH" "$HEIGHT" "$FPS"
}

# Median of Blender's per-frame ` Time: [hh:]mm:ss.xx (Saving: …)` lines, in seconds.
median_frame() {
  { grep -E '^ ?Time: [0-9:.]+' "$1" || true; } | awk '{
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s
    }' | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else printf "?" }'
}

# What went wrong, in Blender's words: our script's MONTAGE_ERROR messages, else its error lines.
blender_error() {
  local log=$1 said
  said=$({ grep '^MONTAGE_ERROR ' "$log" || true; } | sed -E 's/.*"message":"(([^"\\]|\\.)*)".*/\1/' | head -n 3 | paste -sd ';' - | sed 's/;/; /g')
  if [ -z "$said" ]; then
    said=$({ grep -E 'Error|error:|Found no Cycles device|Segmentation fault|Killed|Unable to open' "$log" || true; } | grep -v '^Fra:' | tail -n 3 | paste -sd '|' - | sed 's/|/ | /g')
  fi
  if [ -z "$said" ]; then said=$({ grep -v -E '^Fra:|^$|^Blender quit' "$log" || true; } | tail -n 2 | paste -sd '|' -); fi
  printf '%s' "${said:-no output}"
}

declare -A RC DEVICE_LINE DEVICE_USED SAVED TOOK MEDIAN REASON RESULT

# Renders frames 1..FRAMES of the sample on a device, exactly as blenderRenderArgs orders it.
render() {
  local device=$1 dir=$WORK/$1 log=$WORK/$1.log
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ "$HAVE_BLENDER" != 1 ]; then
    RC[$device]=127 TOOK[$device]=0 SAVED[$device]=0 MEDIAN[$device]=? DEVICE_LINE[$device]= DEVICE_USED[$device]=
    REASON[$device]="Blender not found ($BLENDER)" RESULT[$device]="NOT FOUND"
    return
  fi
  local start rc=0
  start=$(now)
  limited "$log" "$LIMIT" "$BLENDER" --factory-startup -b -Y --python-exit-code 3 -P "$SCENE" -P "$SCRIPT" \
    -t 0 -o "$dir/f_#####" -F PNG -x 1 -s 1 -e "$FRAMES" -a -- --cycles-device "$device" "$(job_json "$device")" || rc=$?
  TOOK[$device]=$(elapsed "$start" "$(now)")
  RC[$device]=$rc
  DEVICE_LINE[$device]=$({ grep -m 1 '^MONTAGE_DEVICE ' "$log" || true; })
  DEVICE_USED[$device]=$(printf '%s' "${DEVICE_LINE[$device]}" | sed -nE 's/.*"type":"([A-Z]+)".*/\1/p')
  local lines files
  lines=$({ grep -c "^Saved: '" "$log" || true; })
  files=$(find "$dir" -maxdepth 1 -name 'f_*.png' | wc -l)
  SAVED[$device]=$((lines < files ? lines : files))
  MEDIAN[$device]=$(median_frame "$log")
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    REASON[$device]="Blender did not finish within ${LIMIT} s (GPU_CHECK_TIMEOUT)"
  elif [ "$rc" != 0 ]; then
    REASON[$device]=$(blender_error "$log")
  elif [ "${DEVICE_USED[$device]}" != "$device" ]; then
    REASON[$device]="Blender rendered, but on ${DEVICE_USED[$device]:-an unknown device} (no MONTAGE_DEVICE line for $device)"
  elif [ "${SAVED[$device]}" != "$FRAMES" ]; then
    REASON[$device]="only ${SAVED[$device]} of $FRAMES frames saved"
  else
    REASON[$device]=
  fi
  if [ -z "${REASON[$device]}" ]; then RESULT[$device]=FOUND; else RESULT[$device]="NOT FOUND"; fi
}

report() {
  local device=$1
  echo "exit code:     ${RC[$device]}"
  echo "device used:   ${DEVICE_LINE[$device]:-none (no MONTAGE_DEVICE line)}"
  echo "frames saved:  ${SAVED[$device]} of $FRAMES"
  if [ "${SAVED[$device]}" = 0 ]; then
    echo "seconds:       ${TOOK[$device]}"
  else
    echo "seconds:       ${TOOK[$device]} (median frame ${MEDIAN[$device]} s, from Blender's Time: lines)"
  fi
  if [ -n "${REASON[$device]}" ]; then
    echo "Blender said:  ${REASON[$device]}"
    if [ -f "$WORK/$device.log" ]; then echo "log:           $WORK/$device.log"; fi
  fi
}

# SSIM (all planes) of a device's frames against the CPU's.
ssim_vs_cpu() {
  local out
  out=$("$FFMPEG" -hide_banner -nostdin -framerate "$FPS" -start_number 1 -i "$WORK/$1/f_%05d.png" \
    -framerate "$FPS" -start_number 1 -i "$WORK/CPU/f_%05d.png" -lavfi ssim -f null - 2>&1 || true)
  printf '%s' "$out" | sed -nE 's/.*SSIM .* All:([0-9.]+).*/\1/p' | tail -n 1
}

say() { printf '%s\n' "$*"; }
line() { printf '\n-- %s\n' "$*"; }

say "== Montage: Blender GPU check =="
say "repository:    $(pwd)"
for f in "$SCENE" "$SCRIPT"; do
  if [ ! -f "$f" ]; then say "missing:       $f (run this from a Montage checkout)"; exit 2; fi
done
# Without Blender the GPU and NVENC facts are still worth having: the renders are reported
# NOT FOUND and NVENC encodes a test pattern instead of the sample's frames.
HAVE_BLENDER=0
if command -v "$BLENDER" >/dev/null 2>&1; then HAVE_BLENDER=1; fi
blender_version() {
  if [ "$HAVE_BLENDER" = 1 ]; then
    printf '%s (%s)' "$({ "$BLENDER" --version 2>/dev/null || true; } | head -n 1)" "$(command -v "$BLENDER")"
  else
    printf 'not found (%s): install Blender, or set BLENDER_PATH to a blender.org build' "$BLENDER"
  fi
}
say "Blender:       $(blender_version)"
if command -v "$FFMPEG" >/dev/null 2>&1; then
  say "ffmpeg:        $({ "$FFMPEG" -hide_banner -version 2>/dev/null || true; } | head -n 1)"
else
  say "ffmpeg:        not found ($FFMPEG)"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  smi=$(nvidia-smi -L 2>&1 || true)
  say "nvidia-smi -L:"
  printf '%s\n' "$smi" | sed 's/^/               /'
else
  say "nvidia-smi -L: nvidia-smi not installed (no NVIDIA driver on this machine)"
fi
if [ "$HAVE_BLENDER" = 1 ]; then
  rc=0
  limited "$WORK/devices.log" 120 "$BLENDER" --factory-startup -b -Y --python-exit-code 3 -P "$SCRIPT" -- '{"mode":"devices"}' || rc=$?
  say "Cycles sees:   $({ grep -m 1 '^MONTAGE_DEVICES ' "$WORK/devices.log" || true; } | sed 's/^MONTAGE_DEVICES //')$([ "$rc" = 0 ] || printf ' (exit %s: %s)' "$rc" "$(blender_error "$WORK/devices.log")")"
fi
say "render:        frames 1–$FRAMES of $SCENE at ${WIDTH}×${HEIGHT}, Cycles, $SAMPLES samples, no denoising"
say "work folder:   $WORK$([ "$KEEP" = 1 ] || printf ' (removed at the end; GPU_CHECK_KEEP=1 keeps it)')"

line "CPU (the reference)"
render CPU
report CPU

for device in "${DEVICES[@]}"; do
  line "$device"
  render "$device"
  report "$device"
  if [ "${RESULT[$device]}" = FOUND ]; then
    if [ "${RESULT[CPU]}" = FOUND ]; then
      speed=$(awk -v g="${TOOK[$device]}" -v c="${TOOK[CPU]}" 'BEGIN { if (g > 0) printf "%.1f", c / g; else printf "?" }')
      ssim=$(ssim_vs_cpu "$device")
      say "vs CPU:        ${TOOK[$device]} s against ${TOOK[CPU]} s (${speed}× the CPU's speed, start-up included); median frame ${MEDIAN[$device]} s against ${MEDIAN[CPU]} s; SSIM of the frames against the CPU's ${ssim:-?}"
    else
      say "vs CPU:        no CPU reference to compare with (the CPU render failed)"
    fi
    say "result:        FOUND: Cycles rendered every frame on $device"
  else
    say "result:        NOT FOUND: no $device device found"
  fi
done

# NVENC, on the frames of the first GPU device that rendered (else the CPU's).
line "NVENC (ffmpeg -c:v h264_nvenc)"
source=CPU
for device in "${DEVICES[@]}"; do
  if [ "${RESULT[$device]}" = FOUND ]; then source=$device; break; fi
done
NVENC=failed
if ! command -v "$FFMPEG" >/dev/null 2>&1; then
  NVENC_WHY="ffmpeg not found ($FFMPEG)"
elif ! { "$FFMPEG" -hide_banner -encoders 2>/dev/null || true; } | grep -q ' h264_nvenc '; then
  NVENC_WHY="this ffmpeg has no h264_nvenc encoder"
else
  # No render saved a frame (no Blender, or it failed): the same number of frames of a test pattern.
  if [ "${SAVED[$source]}" = 0 ]; then
    source="test pattern"
    SAVED[$source]=$FRAMES
    input=(-f lavfi -i "testsrc2=size=${WIDTH}x${HEIGHT}:rate=$FPS")
  else
    input=(-framerate "$FPS" -start_number 1 -i "$WORK/$source/f_%05d.png")
  fi
  say "frames:        ${SAVED[$source]} of $source"
  rc=0
  start=$(now)
  limited "$WORK/nvenc.log" 120 "$FFMPEG" -hide_banner -nostdin -y "${input[@]}" \
    -c:v h264_nvenc -pix_fmt yuv420p -frames:v "${SAVED[$source]}" "$WORK/nvenc.mp4" || rc=$?
  say "exit code:     $rc ($(elapsed "$start" "$(now)") s)"
  if [ "$rc" = 0 ]; then
    probe=$({ "$FFPROBE" -v error -select_streams v:0 -count_frames -show_entries stream=codec_name,nb_read_frames -of csv=p=0 "$WORK/nvenc.mp4" 2>&1 || true; } | head -n 1)
    say "ffprobe:       ${probe:-nothing} (codec, frames)"
    if [ "$probe" = "h264,${SAVED[$source]}" ]; then NVENC=ok; else NVENC_WHY="the output is not ${SAVED[$source]} frames of H.264 (ffprobe: ${probe:-nothing})"; fi
  else
    NVENC_WHY=$({ grep -E '^\[h264_nvenc|Cannot|No device|No NVENC|not found|Error|error' "$WORK/nvenc.log" || true; } | grep -v -E '^ *Stream #' | head -n 1 | sed -E 's/^\[[^]]*\] //' | paste -sd '|' - | sed 's/|/; /g')
    NVENC_WHY=${NVENC_WHY:-ffmpeg exited $rc}
    say "log:           $WORK/nvenc.log"
  fi
fi
if [ "$NVENC" = ok ]; then say "result:        NVENC ok"; else say "result:        NVENC failed: $NVENC_WHY"; fi

summary() {
  say "== Summary =="
  say "Blender:  $(blender_version)"
  say "CPU       $([ "${RESULT[CPU]}" = FOUND ] && echo ok || echo failed): ${SAVED[CPU]} of $FRAMES frames in ${TOOK[CPU]} s$([ -z "${REASON[CPU]}" ] || printf ' (%s)' "${REASON[CPU]}")"
  local device
  for device in "${DEVICES[@]}"; do
    if [ "${RESULT[$device]}" = FOUND ]; then
      printf '%-9s FOUND: %s of %s frames in %s s on %s\n' "$device" "${SAVED[$device]}" "$FRAMES" "${TOOK[$device]}" "${DEVICE_LINE[$device]#MONTAGE_DEVICE }"
    else
      printf '%-9s NOT FOUND: no %s device found (Blender: %s)\n' "$device" "$device" "${REASON[$device]}"
    fi
  done
  if [ "$NVENC" = ok ]; then say "NVENC     ok: h264_nvenc encoded ${SAVED[$source]} frames of $source"; else say "NVENC     failed: $NVENC_WHY"; fi
}
printf '\n'
summary | tee "$WORK/summary.txt"

for device in "${DEVICES[@]}"; do
  if [ "${RESULT[$device]}" = FOUND ]; then exit 0; fi
done
if [ "$HAVE_BLENDER" != 1 ]; then say "no Blender: exit 2"; exit 2; fi
say "no GPU device rendered: exit 1"
exit 1
