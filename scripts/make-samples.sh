#!/usr/bin/env bash
# Regenerates samples/: short two-channel 8 kHz calls (agent on channel 0, customer on
# channel 1) made by `sangdam-host corpus call`, in the synthetic corpus's telephone
# channel (300-3400 Hz, mu-law, line noise) and spoken by the voices the shipped model
# never heard in training (espeak-ng ko+f4 and ko+m4). The sentences come from the
# corpus templates. samples/transcripts.tsv records what each channel says, in order;
# the tests score the shipped model against it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --locked -p sangdam-host
B="$CARGO_TARGET_DIR/debug/sangdam-host"
mkdir -p samples
tsv=samples/transcripts.tsv
printf 'file\tchannel\ttext\n' > "$tsv"

call() { # file seed lines...
  local file=$1 seed=$2; shift 2
  "$B" corpus call "samples/$file" --seed "$seed" "$@"
  for l in "$@"; do
    case "${l%%:*}" in A) ch=agent ;; C) ch=customer ;; esac
    printf '%s\t%s\t%s\n' "$file" "$ch" "${l#*:}" >> "$tsv"
  done
}

call card-limit.wav 1 \
  "C:카드 한도를 삼백만 원으로 올리고 싶은데 안 된대요" \
  "A:친절하게 설명해 주셔서 감사합니다" \
  "C:본인 확인이 너무 오래 걸려요"
call refund.wav 2 \
  "C:요금이 사만 오천 원이나 더 나왔어요" \
  "C:가족 결합 해지하고 싶은데 위약금이 너무 커요"
call thanks.wav 3 \
  "A:삼월 십오일에 시작하는 영어 회화 과정 등록했어요" \
  "C:선생님 설명이 쉬워서 아이가 좋아해요"
ls -l samples
