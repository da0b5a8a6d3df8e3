#!/usr/bin/env bash
# Regenerates tests/data/hotword-calls/: one-line customer calls (8 kHz, two channels,
# the synthetic corpus's telephone channel, voices the speech model never heard) that
# name catalogue products the speech model never heard in training (카드론,
# 장기카드대출, 결합 할인: none is in the synthetic corpus's templates). Greedy decoding
# misspells each name; tests/it/shipped.rs checks that the catalogue's hotwords make
# them come out as the catalogue spells them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --locked -p sangdam-host
B="$CARGO_TARGET_DIR/debug/sangdam-host"
D=tests/data/hotword-calls
mkdir -p "$D"
printf 'file\tproduct\ttext\n' > "$D/transcripts.tsv"
call() { # file seed product text
  "$B" corpus call "$D/$1" --seed "$2" "C:$4"
  printf '%s\t%s\t%s\n' "$1" "$3" "$4" >> "$D/transcripts.tsv"
}
call card-loan.wav 101 카드론 "카드론 금리가 얼마인가요"
call long-loan.wav 102 장기카드대출 "장기카드대출 상환 일정을 알고 싶어요"
call bundle.wav 103 "결합 할인" "결합 할인 받으려면 어떻게 해야 하나요"
