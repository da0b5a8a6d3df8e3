# Sourced by the scripts: one cargo target dir outside the clone, so dependency builds
# (tract, sled: many minutes on 2 cores) are reused by every checkout and CI run.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sangdam/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
