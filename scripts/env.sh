# Sourced by the scripts: one cargo target dir outside the clone, so dependency builds
# (tract, sled: many minutes on 2 cores) are reused by every checkout and CI run.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sangdam/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The host tool's libtorch backend (feature `torch`) builds against pip's torch 2.13.0
# (scripts/setup installs it); the tests and lints take it in when that torch is there.
export LIBTORCH_USE_PYTORCH="${LIBTORCH_USE_PYTORCH:-1}"
if [[ -z "${SANGDAM_NO_TORCH:-}" ]] \
   && python3 -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  export SANGDAM_FEATURES="sangdam/device,sangdam-host/torch"
else
  export SANGDAM_FEATURES="sangdam/device"
fi
