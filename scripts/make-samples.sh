#!/usr/bin/env bash
# Regenerates samples/: short two-channel 8 kHz calls (agent on channel 0, customer on
# channel 1) made by `sangdam-host corpus call`, in the synthetic corpus's telephone
# channel (300-3400 Hz, mu-law, line noise) and spoken by the voices the shipped model
# never heard in training (espeak-ng ko+f4 and ko+m4). samples/transcripts.tsv records what each channel says, in order;
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

# Every line below is a sentence of the synthetic corpus's held-out test split (sentences
# and voices never used in training: `corpus synth` holds test sentences out by a hash of
# their text), so the demo shows what a user gets on speech the model has not heard.
call card.wav 1 \
  "C:구월 십삼일에 삼백만 원이 두 번 결제됐어요" \
  "A:자동 이체 혜택이 좋아서 만족합니다" \
  "C:신용 카드 한도가 너무 낮아요"
call phone.wav 2 \
  "C:시월 삼일부터 전화가 잘 안 돼요" \
  "C:휴대폰 보험 해지하고 싶은데 위약금이 너무 커요"
call course.wav 3 \
  "A:삼월 오일에 시작하는 영어 회화 과정 등록했어요" \
  "C:영어 회화 과정 내용이 알차서 좋아요"
ls -l samples
